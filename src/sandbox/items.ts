import type { AssetContent, ChecksumAlgorithm } from "./asset-bytes";
import { between, hash32, pick, rngFor } from "./prng";

/**
 * Realistic Sentinel-2 L2A and Landsat Collection 2 Level-2 Items, generated: item i of a package
 * is a pure function of (seed, package recipe, i, datetime). Nothing is materialised.
 */
export type Mission = "sentinel-2" | "landsat";
export type StacVersion = "1.0.0" | "1.1.0";

export interface Recipe {
  seed: number;
  /** Package name: part of every asset href and the self link. */
  pkg: string;
  mission: Mission;
  collection: string;
  stacVersion: StacVersion;
  /** Bytes of each band/visual asset. */
  assetSize: number;
  /** Per-asset-key size overrides (e.g. { B02_10m: 1_073_741_824 }). */
  assetSizes: Readonly<Record<string, number>>;
  /** How many distinct bodies each asset key cycles through (bounds checksum work). */
  assetVariants: number;
}

export interface AssetDefinition {
  key: string;
  /** Appended to the Item id to make the asset's file name. */
  fileSuffix: string;
  type: string;
  title: string;
  roles: string[];
  content: AssetContent;
  extra: Record<string, unknown>;
}

interface Band {
  name: string;
  common: string;
  center: number;
  fwhm: number;
  description: string;
}

const S2_BANDS: Record<string, Band> = {
  B02: { name: "B02", common: "blue", center: 0.49, fwhm: 0.098, description: "Blue (band 2)" },
  B03: { name: "B03", common: "green", center: 0.56, fwhm: 0.045, description: "Green (band 3)" },
  B04: { name: "B04", common: "red", center: 0.665, fwhm: 0.038, description: "Red (band 4)" },
};
const LANDSAT_BANDS: Record<string, Band> = {
  blue: { name: "SR_B2", common: "blue", center: 0.48, fwhm: 0.06, description: "Visible blue (Operational Land Imager)" },
  green: { name: "SR_B3", common: "green", center: 0.56, fwhm: 0.06, description: "Visible green (Operational Land Imager)" },
  red: { name: "SR_B4", common: "red", center: 0.65, fwhm: 0.04, description: "Visible red (Operational Land Imager)" },
  nir08: { name: "SR_B5", common: "nir08", center: 0.86, fwhm: 0.03, description: "Near infrared (Operational Land Imager)" },
};

/** [MGRS tile, centre latitude, centre longitude]: real tiles on several continents. */
const S2_TILES: ReadonlyArray<[string, number, number]> = [
  ["31UFU", 52.3, 5.6], ["32TQM", 43.7, 11.9], ["33UUP", 48.2, 13.5], ["55WFR", 68.0, 150.7],
  ["47XML", 78.5, 99.0], ["13TDE", 40.1, -105.5], ["19KFA", -22.1, -68.3], ["10SEG", 38.3, -122.4],
  ["36JTS", -25.8, 30.9], ["50HMK", -31.9, 115.9], ["30TVK", 42.4, -3.7], ["43QGU", 19.0, 77.0],
];
/** [WRS-2 path, row, centre latitude, centre longitude]. */
const LANDSAT_SCENES: ReadonlyArray<[number, number, number, number]> = [
  [89, 90, -41.0, 146.3], [28, 30, 41.9, -95.1], [92, 68, -13.0, 134.2], [198, 24, 51.6, -0.9],
  [193, 27, 47.2, 7.4], [44, 34, 36.1, -121.4], [151, 43, 21.7, 73.6], [225, 77, -21.7, -44.9],
];

const S2_DATA_TYPE = "image/jp2";
const COG = "image/tiff; application=geotiff; profile=cloud-optimized";

export function defaultCollection(mission: Mission): string {
  return mission === "sentinel-2" ? "sentinel-2-l2a" : "landsat-c2-l2";
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

/** 20240419T095549 */
function compact(date: Date): string {
  return date.toISOString().slice(0, 19).replace(/[-:]/g, "");
}

/** RFC 3339 with microseconds, as the ESA products write it. */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

function utmEpsg(lat: number, lon: number): { zone: number; epsg: number } {
  const zone = Math.min(60, Math.max(1, Math.floor((lon + 180) / 6) + 1));
  return { zone, epsg: (lat >= 0 ? 32600 : 32700) + zone };
}

function sizeOf(recipe: Recipe, key: string, fallback: number): number {
  const override = recipe.assetSizes[key];
  return typeof override === "number" && override >= 0 ? override : fallback;
}

function content(recipe: Recipe, index: number, key: string, size: number, algorithm: ChecksumAlgorithm): AssetContent {
  const variant = index % Math.max(1, recipe.assetVariants);
  return { id: `${recipe.seed}/${recipe.mission}/${key}/${variant}`, size, algorithm };
}

interface Scene {
  id: string;
  datetimeMs: number;
  lat: number;
  lon: number;
  epsg: number;
  zone: number;
  tile: string;
  platform: string;
  random: () => number;
}

function sceneOf(recipe: Recipe, index: number, datetimeMs: number): Scene {
  const random = rngFor(recipe.seed, `${recipe.pkg}/${recipe.mission}`, index);
  const date = new Date(datetimeMs);
  if (recipe.mission === "sentinel-2") {
    const [tile, lat0, lon0] = pick(random, S2_TILES);
    const lat = lat0 + between(random, -0.05, 0.05);
    const lon = lon0 + between(random, -0.05, 0.05);
    const platform = pick(random, ["S2A", "S2B", "S2C"]);
    const orbit = 1 + Math.floor(random() * 143);
    // The processing time carries the index, so ids stay unique even when Items share a second.
    const processed = new Date(datetimeMs - (datetimeMs % 1000) + 3_600_000 + (index % 7200) * 1000);
    const id = `${platform}_MSIL2A_${compact(date)}_N0511_R${pad(orbit, 3)}_T${tile}_${compact(processed)}`;
    const { zone, epsg } = utmEpsg(lat, lon);
    return { id, datetimeMs, lat, lon, epsg, zone, tile, platform: `sentinel-2${platform.slice(2).toLowerCase()}`, random };
  }
  const [, , lat0, lon0] = pick(random, LANDSAT_SCENES);
  // Path/row come from the index, so ids stay unique for up to 57,784 Items a day.
  const path = 1 + (index % 233);
  const row = 1 + (Math.floor(index / 233) % 248);
  const lat = lat0 + between(random, -0.05, 0.05);
  const lon = lon0 + between(random, -0.05, 0.05);
  const sat = pick(random, ["LC08", "LC09"]);
  const processedDay = new Date(datetimeMs + 86_400_000 * (2 + (index % 10)));
  const day = (d: Date) => d.toISOString().slice(0, 10).replace(/-/g, "");
  const id = `${sat}_L2SP_${pad(path, 3)}${pad(row, 3)}_${day(date)}_${day(processedDay)}_02_T1`;
  const { zone, epsg } = utmEpsg(lat, lon);
  return { id, datetimeMs, lat, lon, epsg, zone, tile: `${pad(path, 3)}${pad(row, 3)}`, platform: sat === "LC08" ? "landsat-8" : "landsat-9", random };
}

/** Raster v1.1.0 (STAC 1.0.0) keeps these in raster:bands; raster v2.0.0 (STAC 1.1.0) puts them on the asset. */
function rasterFields(recipe: Recipe, scale: number, offset: number, resolution: number): Record<string, unknown> {
  if (recipe.stacVersion === "1.1.0") return { "raster:scale": scale, "raster:offset": offset, "raster:spatial_resolution": resolution, nodata: 0, data_type: "uint16" };
  return { "raster:bands": [{ nodata: 0, data_type: "uint16", scale, offset, spatial_resolution: resolution }] };
}

const definitionCache = new WeakMap<Recipe, AssetDefinition[][]>();

/** The assets an Item of this recipe has, with their content identity (no bytes, no checksum). Cached per variant. */
export function assetDefinitions(recipe: Recipe, index: number): AssetDefinition[] {
  const variants = Math.max(1, recipe.assetVariants);
  let perVariant = definitionCache.get(recipe);
  if (!perVariant) definitionCache.set(recipe, (perVariant = []));
  const variant = index % variants;
  return (perVariant[variant] ??= makeAssetDefinitions(recipe, variant));
}

function makeAssetDefinitions(recipe: Recipe, index: number): AssetDefinition[] {
  const small = (key: string, cap: number) => sizeOf(recipe, key, Math.min(recipe.assetSize, cap));
  const big = (key: string) => sizeOf(recipe, key, recipe.assetSize);
  const bandExtra = (band: Band, gsd: number) =>
    recipe.stacVersion === "1.1.0"
      ? { gsd, bands: [{ name: band.name, description: band.description, "eo:common_name": band.common, "eo:center_wavelength": band.center, "eo:full_width_half_max": band.fwhm }] }
      : { gsd, "eo:bands": [{ name: band.name, description: band.description, common_name: band.common, center_wavelength: band.center, full_width_half_max: band.fwhm }] };
  if (recipe.mission === "sentinel-2") {
    const list: AssetDefinition[] = ["B02", "B03", "B04"].map((b) => {
      const key = `${b}_10m`;
      return {
        key, fileSuffix: `_${key}.jp2`, type: S2_DATA_TYPE, title: `${S2_BANDS[b].description} - 10m`, roles: ["data", "reflectance"],
        content: content(recipe, index, key, big(key), "sha3-256"),
        extra: { ...bandExtra(S2_BANDS[b], 10), ...rasterFields(recipe, 0.0001, -0.1, 10) },
      };
    });
    list.push({
      key: "visual", fileSuffix: "_TCI_10m.jp2", type: S2_DATA_TYPE, title: "True color image", roles: ["visual"],
      content: content(recipe, index, "visual", big("visual"), "sha2-256"),
      extra: recipe.stacVersion === "1.1.0" ? { gsd: 10, data_type: "uint8" } : { gsd: 10, "raster:bands": [{ data_type: "uint8" }, { data_type: "uint8" }, { data_type: "uint8" }] },
    });
    list.push({
      key: "thumbnail", fileSuffix: "-ql.jpg", type: "image/jpeg", title: "Quicklook", roles: ["thumbnail", "overview"],
      content: content(recipe, index, "thumbnail", small("thumbnail", 16 * 1024), "sha2-256"), extra: {},
    });
    list.push({
      key: "product_metadata", fileSuffix: "_MTD_MSIL2A.xml", type: "application/xml", title: "MTD_MSIL2A.xml", roles: ["metadata"],
      content: content(recipe, index, "product_metadata", small("product_metadata", 8 * 1024), "sha3-256"), extra: {},
    });
    return list;
  }
  const list: AssetDefinition[] = Object.keys(LANDSAT_BANDS).map((key) => ({
    key, fileSuffix: `_${LANDSAT_BANDS[key].name}.TIF`, type: COG, title: LANDSAT_BANDS[key].description, roles: ["data", "reflectance"],
    content: content(recipe, index, key, big(key), key === "nir08" ? "sha3-256" : "sha2-256"),
    extra: { ...bandExtra(LANDSAT_BANDS[key], 30), ...rasterFields(recipe, 0.0000275, -0.2, 30) },
  }));
  list.push({
    key: "thumbnail", fileSuffix: "_thumb_small.jpeg", type: "image/jpeg", title: "Thumbnail image", roles: ["thumbnail"],
    content: content(recipe, index, "thumbnail", small("thumbnail", 16 * 1024), "sha2-256"), extra: {},
  });
  list.push({
    key: "mtl.xml", fileSuffix: "_MTL.xml", type: "application/xml", title: "Product Metadata File (xml)", roles: ["metadata"],
    content: content(recipe, index, "mtl.xml", small("mtl.xml", 8 * 1024), "sha3-256"), extra: {},
  });
  return list;
}

const EXT_1_0 = [
  "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
  "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
  "https://stac-extensions.github.io/view/v1.0.0/schema.json",
  "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
  "https://stac-extensions.github.io/file/v2.1.0/schema.json",
  "https://stac-extensions.github.io/grid/v1.1.0/schema.json",
  "https://stac-extensions.github.io/processing/v1.1.0/schema.json",
  "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
];
const EXT_1_1 = [
  "https://stac-extensions.github.io/eo/v2.0.0/schema.json",
  "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
  "https://stac-extensions.github.io/view/v1.0.0/schema.json",
  "https://stac-extensions.github.io/sat/v1.1.0/schema.json",
  "https://stac-extensions.github.io/file/v2.1.0/schema.json",
  "https://stac-extensions.github.io/grid/v1.1.0/schema.json",
  "https://stac-extensions.github.io/processing/v1.2.0/schema.json",
  "https://stac-extensions.github.io/raster/v2.0.0/schema.json",
];

export interface ItemContext {
  /** http origin of the sandbox, without a trailing slash. */
  baseUrl: string;
  /** Href of the Item's own document. */
  selfHref: string;
  /** Href of an asset of this Item, by its definition and the Item id. */
  assetHref: (definition: AssetDefinition, itemId: string) => string;
  /** Multihash of a content, already computed. */
  checksum: (content: AssetContent) => string;
}

/** Cached JSON fragments: the parts of Items that repeat (asset metadata per content, links). */
const fragments = new Map<string, string>();
const EXT_1_0_TEXT = JSON.stringify(EXT_1_0);
const EXT_1_1_TEXT = JSON.stringify(EXT_1_1);

/** Item i of the recipe at the given datetime, as JSON text (the streaming hot path). Pure: same inputs, same text. */
export function buildItemText(recipe: Recipe, index: number, datetimeMs: number, ctx: ItemContext): string {
  const s = sceneOf(recipe, index, datetimeMs);
  const r = s.random;
  const halfLat = recipe.mission === "sentinel-2" ? 0.49 : 0.93;
  const halfLon = halfLat / Math.max(0.15, Math.cos((s.lat * Math.PI) / 180));
  const round = (v: number) => Math.round(v * 1e6) / 1e6;
  const west = round(Math.max(-180, s.lon - halfLon));
  const east = round(Math.min(180, s.lon + halfLon));
  const south = round(Math.max(-90, s.lat - halfLat));
  const north = round(Math.min(90, s.lat + halfLat));
  const v11 = recipe.stacVersion === "1.1.0";
  const projCode = v11 ? { "proj:code": `EPSG:${s.epsg}` } : { "proj:epsg": s.epsg };
  const x0 = 300000 + Math.floor(r() * 400) * 100;
  const y0 = (s.lat >= 0 ? 0 : 10_000_000) + Math.round((s.lat * 110_574) / 100) * 100 + 54_900;
  const pixel = recipe.mission === "sentinel-2" ? 10 : 30;
  const shape = recipe.mission === "sentinel-2" ? [10980, 10980] : [7791, 7661];
  const created = rfc3339(datetimeMs + 7_200_000 + Math.floor(r() * 3_600_000));
  const cloud = between(r, 0, 100, 4);

  const properties: Record<string, unknown> = {
    datetime: rfc3339(datetimeMs),
    created,
    updated: created,
    platform: s.platform,
    constellation: recipe.mission === "sentinel-2" ? "sentinel-2" : "landsat",
    instruments: recipe.mission === "sentinel-2" ? ["msi"] : ["oli", "tirs"],
    gsd: pixel,
    "eo:cloud_cover": cloud,
    "view:sun_azimuth": between(r, 100, 200, 6),
    "view:sun_elevation": between(r, 10, 70, 6),
    "view:off_nadir": 0,
    "sat:orbit_state": "descending",
    "sat:relative_orbit": 1 + Math.floor(r() * 143),
    "sat:absolute_orbit": 30000 + Math.floor(r() * 20000),
    "grid:code": recipe.mission === "sentinel-2" ? `MGRS-${s.tile}` : `WRS2-${s.tile}`,
    "processing:level": recipe.mission === "sentinel-2" ? "L2A" : "L2SP",
    "processing:facility": recipe.mission === "sentinel-2" ? "ESA-Copernicus" : "LaSRC",
    ...projCode,
  };
  if (recipe.mission === "sentinel-2") {
    Object.assign(properties, {
      "s2:product_type": "S2MSI2A",
      "s2:processing_baseline": "05.11",
      "s2:mgrs_tile": s.tile,
      "s2:nodata_pixel_percentage": between(r, 0, 40, 6),
      "s2:vegetation_percentage": between(r, 0, 60, 6),
      "s2:water_percentage": between(r, 0, 30, 6),
      "s2:degraded_msi_data_percentage": 0,
    });
  } else {
    Object.assign(properties, {
      "landsat:wrs_type": "2",
      "landsat:wrs_path": s.tile.slice(0, 3),
      "landsat:wrs_row": s.tile.slice(3),
      "landsat:collection_number": "02",
      "landsat:collection_category": "T1",
      "landsat:cloud_cover_land": between(r, 0, 100, 2),
    });
  }

  const projText = v11 ? `"proj:code":"EPSG:${s.epsg}"` : `"proj:epsg":${s.epsg}`;
  let assetsText = "";
  for (const def of assetDefinitions(recipe, index)) {
    const raster = def.roles.includes("data") || def.roles.includes("visual");
    const checksum = ctx.checksum(def.content);
    const cacheKey = `${recipe.stacVersion}|${def.key}|${def.content.id}|${def.content.size}|${checksum}`;
    let fragment = fragments.get(cacheKey);
    if (fragment === undefined) {
      fragment = JSON.stringify({
        type: def.type,
        title: def.title,
        roles: def.roles,
        "file:size": def.content.size,
        ...checksumField(checksum),
        ...(raster ? { "proj:shape": shape } : {}),
        ...def.extra,
      }).slice(1, -1);
      if (fragments.size > 50_000) fragments.clear();
      fragments.set(cacheKey, fragment);
    }
    const rasterText = raster ? `,"proj:transform":[${pixel},0,${x0},0,${-pixel},${y0}],${projText}` : "";
    assetsText += `${assetsText ? "," : ""}${JSON.stringify(def.key)}:{"href":${JSON.stringify(ctx.assetHref(def, s.id))},${fragment}${rasterText}}`;
  }

  const linksKey = `${ctx.baseUrl}|${recipe.collection}|${recipe.mission}`;
  let otherLinks = fragments.get(linksKey);
  if (otherLinks === undefined) {
    const collectionHref = `${ctx.baseUrl}/stac/collections/${encodeURIComponent(recipe.collection)}`;
    otherLinks = JSON.stringify([
      { rel: "collection", href: collectionHref, type: "application/json", title: recipe.collection },
      { rel: "parent", href: collectionHref, type: "application/json" },
      { rel: "root", href: `${ctx.baseUrl}/stac/`, type: "application/json" },
      {
        rel: "license",
        href: recipe.mission === "sentinel-2"
          ? "https://sentinel.esa.int/documents/247904/690755/Sentinel_Data_Legal_Notice"
          : "https://www.usgs.gov/core-science-systems/hdds/data-policy",
        title: "Data licence",
      },
    ]).slice(1, -1);
    fragments.set(linksKey, otherLinks);
  }
  const ring = `[[${west},${south}],[${east},${south}],[${east},${north}],[${west},${north}],[${west},${south}]]`;
  return (
    `{"type":"Feature","stac_version":"${recipe.stacVersion}","stac_extensions":${v11 ? EXT_1_1_TEXT : EXT_1_0_TEXT},` +
    `"id":${JSON.stringify(s.id)},"collection":${JSON.stringify(recipe.collection)},` +
    `"geometry":{"type":"Polygon","coordinates":[${ring}]},"bbox":[${west},${south},${east},${north}],` +
    `"properties":${JSON.stringify(properties)},` +
    `"links":[{"rel":"self","href":${JSON.stringify(ctx.selfHref)},"type":"application/geo+json"},${otherLinks}],` +
    `"assets":{${assetsText}}}`
  );
}

/** Builds Item i as an object (the same Item as buildItemText). */
export function buildItem(recipe: Recipe, index: number, datetimeMs: number, ctx: ItemContext): Record<string, unknown> {
  return JSON.parse(buildItemText(recipe, index, datetimeMs, ctx)) as Record<string, unknown>;
}

/** An unknown checksum (a large body still being hashed) is left out rather than faked. */
function checksumField(value: string): Record<string, string> {
  return value ? { "file:checksum": value } : {};
}

/** A stable small number for naming: exported for tests of determinism. */
export function recipeFingerprint(recipe: Recipe): number {
  return hash32(JSON.stringify(recipe));
}
