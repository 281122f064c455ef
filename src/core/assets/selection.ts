import { extensionFor } from "./naming";

/** How the assets of an Item were chosen, for messages and `msg.selection`. */
export type SelectionRule = "keys" | "roles" | "types" | "data-role" | "data-like";

type Asset = Record<string, unknown>;

/** Roles that mark an asset as a preview or a description of the data, never the data itself. */
const NOT_DATA_ROLES: ReadonlySet<string> = new Set(["thumbnail", "overview", "metadata", "visual-preview"]);

/** Media types (before any `;` parameter) of files that hold data rather than a preview or a description. */
const DATA_MEDIA_TYPES: ReadonlySet<string> = new Set([
  "image/tiff",
  "image/vnd.stac.geotiff",
  "image/jp2",
  "application/x-hdf5",
  "application/x-hdf",
  "application/x-netcdf",
  "application/netcdf",
  "application/vnd+zarr",
  "application/vnd.zarr",
  "application/x-parquet",
  "application/vnd.apache.parquet",
  "application/flatgeobuf",
  "application/vnd.flatgeobuf",
  "application/geopackage+sqlite3",
  "application/x-grib",
  "application/wmo-grib",
]);

/** The same, by file extension, for assets with no `type`. */
const DATA_EXTENSIONS: ReadonlySet<string> = new Set([".tif", ".tiff", ".jp2", ".h5", ".hdf", ".he5", ".nc", ".parquet", ".fgb", ".gpkg", ".grib", ".grib2", ".zarr"]);

/** Whole-product bundles: the default selection never takes them (a CDSE `Product` zip is about 1 GB). */
const ARCHIVE_MEDIA_TYPES: ReadonlySet<string> = new Set([
  "application/zip",
  "application/x-zip-compressed",
  "application/x-tar",
  "application/gzip",
  "application/x-gzip",
  "application/x-7z-compressed",
  "application/x-bzip2",
]);
const ARCHIVE_EXTENSIONS: ReadonlySet<string> = new Set([".zip", ".tar", ".gz", ".tgz", ".7z", ".bz2"]);

function baseType(asset: Asset): string {
  return typeof asset.type === "string" ? asset.type.split(";")[0].trim().toLowerCase() : "";
}

function rolesOf(asset: Asset): unknown[] {
  return Array.isArray(asset.roles) ? asset.roles : [];
}

function hrefExtension(asset: Asset): string {
  return typeof asset.href === "string" ? extensionFor(undefined, asset.href) : "";
}

export function isArchive(asset: Asset): boolean {
  if (rolesOf(asset).includes("archive")) return true;
  const type = baseType(asset);
  return type ? ARCHIVE_MEDIA_TYPES.has(type) : ARCHIVE_EXTENSIONS.has(hrefExtension(asset));
}

function isDataLike(asset: Asset): boolean {
  if (rolesOf(asset).some((r) => typeof r === "string" && NOT_DATA_ROLES.has(r))) return false;
  const type = baseType(asset);
  return type ? DATA_MEDIA_TYPES.has(type) : DATA_EXTENSIONS.has(hrefExtension(asset));
}

/**
 * The default selection: the assets with role `data` when any asset has it; otherwise the data-like
 * ones (raster, HDF, netCDF, Zarr, Parquet... by media type, or by extension when there is no type),
 * leaving out thumbnails, overviews and metadata. Whole-product archives only when `includeArchives`.
 */
export function defaultSelection(assets: Record<string, Asset>, includeArchives = false): { keys: string[]; rule: SelectionRule } {
  const steps = defaultSelectionSteps(assets, includeArchives);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/** The same, yielding after every asset so a caller can serve the event loop in between. */
export function* defaultSelectionSteps(assets: Record<string, Asset>, includeArchives = false): Generator<void, { keys: string[]; rule: SelectionRule }, void> {
  const valid: Array<[string, Asset]> = [];
  let hasDataRole = false;
  for (const key in assets) {
    if (!Object.prototype.hasOwnProperty.call(assets, key)) continue;
    const a = assets[key];
    if (a === null || typeof a !== "object" || Array.isArray(a)) continue;
    valid.push([key, a]);
    if (!hasDataRole && rolesOf(a).includes("data")) hasDataRole = true;
  }
  const keys: string[] = [];
  for (const [key, a] of valid) {
    yield;
    const selected = hasDataRole ? rolesOf(a).includes("data") : isDataLike(a);
    if (selected && (includeArchives || !isArchive(a))) keys.push(key);
  }
  return { keys, rule: hasDataRole ? "data-role" : "data-like" };
}
