import { relative, resolve } from "node:path";
import { DatasphereError } from "../errors";
import { printablePreview } from "../redact";
import { parseMultihash, type ParsedChecksum } from "./multihash";
import { displayHref, extensionFor, withExtension } from "./naming";
import { containedPath, sanitizeRelativePath, sanitizeSegment, unsafeReason } from "./paths";
import { defaultSelectionSteps, type SelectionRule } from "./selection";

export type SelectBy = "keys" | "roles" | "types";
export type NamingMode = "local-path" | "key";

export const DEFAULT_LAYOUT = "{collection}/{id}/";
const PLACEHOLDERS = new Set(["collection", "id", "year", "month", "day"]);

export interface PlanOptions {
  /** The target folder; every planned file lands inside it. */
  root: string;
  selectBy?: SelectBy;
  /** Asset keys (selectBy "keys"); empty = the default selection (see `defaultSelection`). */
  keys?: ReadonlyArray<string>;
  /** A requested key the Item lacks: listed in `Plan.skipped` (default) or an error of that asset. */
  missingKeys?: "skip" | "error";
  /** Let the default selection take whole-product archives (zip, tar...). */
  includeArchives?: boolean;
  /** A `file:checksum` we cannot verify (malformed, unknown algorithm): an error (default), or download it as unverified. */
  unverifiableChecksum?: "error" | "keep";
  roles?: ReadonlyArray<string>;
  /** Media types; "image/tiff" also matches "image/tiff; application=geotiff". */
  mediaTypes?: ReadonlyArray<string>;
  /** Folder layout under root, e.g. "{collection}/{id}/" (placeholders: collection, id, year, month, day). */
  layout?: string;
  naming?: NamingMode;
}

export interface PlanEntry {
  itemId: string;
  key: string;
  /** The absolute http(s) URL to download. */
  href: string;
  /** The asset's own href, as written in the Item. */
  originalHref: string;
  /** Name of the alternate whose href is used, when the primary href is not http(s). */
  alternate?: string;
  path: string;
  /** The download folder (absolute) the path is inside. */
  root: string;
  relativePath: string;
  size?: number;
  checksum?: ParsedChecksum;
  mediaType?: string;
  /** Why file:local_path was not used, when it was present. */
  note?: string;
}

export interface PlanError {
  itemId: string;
  key: string;
  href?: string;
  error: DatasphereError;
}

export interface Plan {
  itemId: string;
  entries: PlanEntry[];
  errors: PlanError[];
  /** Requested keys the Item does not have (with missingKeys "skip"). */
  skipped: string[];
  /** How the assets were chosen. */
  rule: SelectionRule;
  /** How many assets the rule selected, before any of them failed to plan. */
  selected: number;
}

/** Longest relative path of a planned file, in characters: beyond any file system's limit, and keeps the collision check linear. */
const MAX_RELATIVE_PATH = 1024;
/** Most folders a file:local_path may nest; deeper ones fall back to the key. */
const MAX_DEPTH = 32;
/** Longest href used: servers refuse URLs far shorter; a longer one is a hostile or broken Item. */
const MAX_HREF = 16 * 1024;
/** Asset errors listed one by one per Item; the rest are counted in one closing error (a message stays readable, memory bounded). */
export const MAX_LISTED_ERRORS = 100;
/** Planning yields to the event loop after this much work, so a huge Item never blocks Node-RED. */
const SLICE_MS = 10;

type Asset = Record<string, unknown> & { href?: unknown; roles?: unknown; type?: unknown; alternate?: unknown };

/**
 * Decides, before any byte moves, which assets of an Item to download, from which URL, and to which
 * local file. Pure: the same Item and options give the same plan. Problems of one asset become that
 * asset's error; an Item that is not an Item throws.
 */
export function planItem(item: unknown, options: PlanOptions): Plan {
  const steps = planSteps(item, options);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/** The same plan, computed in slices of at most about SLICE_MS with the event loop served in between. */
export async function planItemAsync(item: unknown, options: PlanOptions): Promise<Plan> {
  const steps = planSteps(item, options);
  let sliceStart = performance.now();
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    if (performance.now() - sliceStart > SLICE_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
  }
}

function* planSteps(item: unknown, options: PlanOptions): Generator<void, Plan, void> {
  const obj = requireItem(item);
  const itemId = obj.id as string;
  const assets = obj.assets as Record<string, Asset>;
  const errors: PlanError[] = [];
  const unlisted = { count: 0, code: undefined as DatasphereError["code"] | undefined, why: "" };
  const fail = (key: string, href: string | undefined, code: DatasphereError["code"], why: string) => {
    if (errors.length < MAX_LISTED_ERRORS) errors.push({ itemId, key, href, error: assetError(code, itemId, key, href, why) });
    else if (unlisted.count++ === 0) Object.assign(unlisted, { code, why });
  };

  const folder = folderSegments(obj, options.layout ?? DEFAULT_LAYOUT);
  const selfHref = selfLink(obj);
  const candidates: PlanEntry[] = [];

  const selection = yield* selectKeys(assets, options);
  const skipped: string[] = [];
  for (const key of selection.missing) {
    if (options.missingKeys === "error") fail(key, undefined, "NOT_FOUND", "no asset with this key in the Item");
    else skipped.push(key);
  }
  const relative: Array<{ key: string; href: string }> = [];

  for (const key of selection.keys) {
    yield;
    const asset = assets[key];
    const originalHref = typeof asset.href === "string" ? asset.href : "";
    if (folder.error) {
      fail(key, originalHref, "UNSAFE_PATH", folder.error);
      continue;
    }
    const chosen = chooseHref(asset, selfHref);
    if ("error" in chosen) {
      if (chosen.code === "RELATIVE_HREF") relative.push({ key, href: originalHref });
      else fail(key, originalHref, chosen.code, chosen.error);
      continue;
    }
    const checksum = parseMultihash(asset["file:checksum"]);
    if (checksum?.kind === "unsupported" && options.unverifiableChecksum !== "keep") {
      fail(key, originalHref, "UNVERIFIABLE", `file:checksum cannot be verified (${checksum.reason}); set "Unverifiable" to "download as unverified" to accept the bytes without a check`);
      continue;
    }
    const name = fileSegments(key, asset, chosen.href, options.naming ?? "local-path");
    if ("error" in name) {
      fail(key, originalHref, "UNSAFE_PATH", name.error);
      continue;
    }
    let path: string;
    try {
      path = containedPath(options.root, [...folder.segments, ...name.segments]);
    } catch (error) {
      fail(key, originalHref, "UNSAFE_PATH", (error as Error).message);
      continue;
    }
    const relativePath = relativeTo(options.root, path);
    if (relativePath.length > MAX_RELATIVE_PATH) {
      fail(key, originalHref, "UNSAFE_PATH", `local path is longer than ${MAX_RELATIVE_PATH} characters`);
      continue;
    }
    const size = asset["file:size"];
    candidates.push({
      itemId,
      key,
      href: chosen.href,
      originalHref,
      alternate: chosen.alternate,
      path,
      root: resolve(options.root),
      relativePath,
      size: typeof size === "number" && Number.isSafeInteger(size) && size >= 0 ? size : undefined,
      checksum,
      mediaType: typeof asset.type === "string" ? asset.type : undefined,
      note: name.note,
    });
  }
  if (relative.length > 0) {
    const keys = relative.map((r) => r.key);
    const error = new DatasphereError(
      "RELATIVE_HREF",
      `Item ${preview(itemId)}: ${relative.length === 1 ? `asset ${preview(keys[0])} has a relative href` : `${relative.length} assets have relative hrefs`} ("${preview(relative[0].href)}"${relative.length > 1 ? ", …" : ""}) and the Item has no http(s) self link to resolve them against; give the Item an absolute rel=self link or absolute asset hrefs`,
      { details: { itemId, key: keys[0], keys: keys.slice(0, 50) } },
    );
    errors.push({ itemId, key: keys[0], href: relative[0].href, error });
  }

  const entries = withoutCollisions(candidates, (entry, other) =>
    fail(entry.key, entry.originalHref, "COLLISION", `local file "${entry.relativePath}" collides with asset "${other.key}" ("${other.relativePath}")`),
  );
  if (unlisted.count > 0) {
    const error = new DatasphereError(unlisted.code!, `Item ${preview(itemId)}: ${unlisted.count} more assets cannot be downloaded (not listed one by one; the first: ${preview(unlisted.why)})`, {
      details: { itemId, key: "", more: unlisted.count },
    });
    errors.push({ itemId, key: "", error });
  }
  return { itemId, entries, errors, skipped, rule: selection.rule, selected: selection.keys.length };
}

function relativeTo(root: string, path: string): string {
  return relative(root, path).split("\\").join("/");
}

function requireItem(item: unknown): Record<string, unknown> {
  const obj = item as Record<string, unknown>;
  if (!obj || typeof obj !== "object" || Array.isArray(obj) || obj.type !== "Feature") {
    throw new DatasphereError("INVALID_STAC", "msg.payload is not a STAC Item (type must be \"Feature\")");
  }
  if (typeof obj.id !== "string" || obj.id === "") throw new DatasphereError("INVALID_STAC", "the Item has no id");
  if (!obj.assets || typeof obj.assets !== "object" || Array.isArray(obj.assets)) {
    throw new DatasphereError("INVALID_STAC", `Item ${preview(obj.id)}: assets missing (must be an object)`);
  }
  return obj;
}

function* selectKeys(assets: Record<string, Asset>, options: PlanOptions): Generator<void, { keys: string[]; missing: string[]; rule: SelectionRule }, void> {
  const mode = options.selectBy ?? "keys";
  const list = (values: ReadonlyArray<string> | undefined) => (values ?? []).map((v) => v.trim()).filter((v) => v !== "");
  const isAsset = (key: string) => Object.prototype.hasOwnProperty.call(assets, key) && assets[key] !== null && typeof assets[key] === "object";
  const keys = list(options.keys);
  if (mode === "keys" && keys.length > 0) {
    const unique = [...new Set(keys)];
    return { keys: unique.filter(isAsset), missing: unique.filter((k) => !isAsset(k)), rule: "keys" };
  }
  if (mode === "keys") return { ...(yield* defaultSelectionSteps(assets, options.includeArchives)), missing: [] };
  const roles = list(options.roles);
  const types = list(options.mediaTypes).map((t) => t.toLowerCase());
  const selected: string[] = [];
  for (const [key, asset] of Object.entries(assets)) {
    yield;
    if (!asset || typeof asset !== "object") continue;
    if (mode === "roles") {
      const assetRoles = Array.isArray(asset.roles) ? asset.roles : [];
      if (roles.some((r) => assetRoles.includes(r))) selected.push(key);
    } else {
      const type = typeof asset.type === "string" ? asset.type.toLowerCase().trim() : "";
      if (types.some((t) => type === t || type.startsWith(`${t};`) || type.split(";")[0].trim() === t)) selected.push(key);
    }
  }
  return { keys: selected, missing: [], rule: mode };
}

function folderSegments(item: Record<string, unknown>, layout: string): { segments: string[]; error?: string } {
  const props = (item.properties ?? {}) as Record<string, unknown>;
  const when = typeof props.datetime === "string" ? props.datetime : typeof props.start_datetime === "string" ? props.start_datetime : "";
  const date = /^(\d{4})-(\d{2})-(\d{2})/.exec(when);
  const values: Record<string, string> = {
    collection: typeof item.collection === "string" && item.collection !== "" ? item.collection : "no-collection",
    id: item.id as string,
    year: date?.[1] ?? "no-date",
    month: date?.[2] ?? "no-date",
    day: date?.[3] ?? "no-date",
  };
  const segments: string[] = [];
  for (const part of layout.split(/[\\/]+/).filter((s) => s !== "")) {
    let error: string | undefined;
    const text = part.replace(/\{([a-z]+)\}/g, (whole, name: string) => {
      if (!PLACEHOLDERS.has(name)) throw new DatasphereError("INVALID_CONFIG", `folder layout: unknown placeholder ${whole}`);
      const reason = unsafeReason(values[name]);
      if (reason) error = `Item ${name} "${preview(values[name])}" ${reason}`;
      return sanitizeSegment(values[name]);
    });
    if (error) return { segments, error };
    segments.push(sanitizeSegment(text));
  }
  return { segments };
}

/** Validates a layout template up front, so a bad setting is a configuration error, not an asset error. */
export function checkLayout(layout: string): string | undefined {
  const reason = unsafeReason(layout.replace(/\{[a-z]+\}/g, "x") || "x");
  if (reason && layout.trim() !== "") return `folder layout "${layout}" ${reason}`;
  for (const m of layout.matchAll(/\{([^}]*)\}/g)) if (!PLACEHOLDERS.has(m[1])) return `folder layout: unknown placeholder {${m[1]}}`;
  return undefined;
}

function fileSegments(key: string, asset: Asset, href: string, naming: NamingMode): { segments: string[]; note?: string } | { error: string } {
  let note: string | undefined;
  const localPath = asset["file:local_path"];
  if (naming === "local-path" && typeof localPath === "string" && localPath !== "") {
    if (localPath.length > MAX_RELATIVE_PATH) note = `file:local_path not used: longer than ${MAX_RELATIVE_PATH} characters`;
    else {
      try {
        const segments = sanitizeRelativePath(localPath);
        if (segments.length <= MAX_DEPTH) return { segments };
        note = `file:local_path not used: nests deeper than ${MAX_DEPTH} folders`;
      } catch (error) {
        note = `file:local_path not used: ${(error as Error).message}`;
      }
    }
  }
  const reason = unsafeReason(key);
  if (reason) return { error: `asset key ${reason}` };
  const alternates = asset.alternate && typeof asset.alternate === "object" ? Object.values(asset.alternate as Record<string, { href?: unknown }>) : [];
  const hrefs = [href, asset.href, ...alternates.map((a) => a?.href)].filter((h): h is string => typeof h === "string");
  return { segments: [sanitizeSegment(withExtension(key, extensionFor(asset.type, ...hrefs)))], note };
}

function chooseHref(asset: Asset, selfHref: string | undefined): { href: string; alternate?: string } | { error: string; code: DatasphereError["code"] } {
  const primary = resolveHref(asset.href, selfHref);
  if ("href" in primary) return primary;
  const alternates = asset.alternate && typeof asset.alternate === "object" ? Object.entries(asset.alternate as Record<string, { href?: unknown }>) : [];
  for (const [name, alt] of alternates) {
    const resolved = resolveHref(alt?.href, selfHref);
    if ("href" in resolved) return { href: resolved.href, alternate: name };
  }
  return primary;
}

function resolveHref(href: unknown, selfHref: string | undefined): { href: string } | { error: string; code: DatasphereError["code"] } {
  if (typeof href !== "string" || href.trim() === "") return { code: "INVALID_STAC", error: "asset has no href" };
  if (href.length > MAX_HREF) return { code: "INVALID_STAC", error: `href is ${href.length} characters long (at most ${MAX_HREF} are accepted)` };
  if (href.includes("\u0000")) return { code: "UNSAFE_PATH", error: "href contains a NUL character" };
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(href)?.[1]?.toLowerCase();
  let url: URL;
  if (scheme && !/^[A-Za-z]$/.test(scheme)) {
    try {
      url = new URL(href);
    } catch {
      return { code: "INVALID_STAC", error: "href is not a valid URL" };
    }
  } else {
    if (scheme) return { code: "UNSAFE_PATH", error: "href is a Windows path (drive letter)" };
    if (!selfHref) return { code: "RELATIVE_HREF", error: "relative href, and the Item has no http(s) self link to resolve it against" };
    url = new URL(href, selfHref);
  }
  if (url.protocol === "http:" || url.protocol === "https:") return { href: url.toString() };
  if (url.protocol === "file:") return { code: "UNSUPPORTED", error: "file:// hrefs from a remote document are refused" };
  if (url.protocol === "s3:") return { code: "UNSUPPORTED", error: "s3:// is not supported yet (and the asset has no http(s) alternate)" };
  return { code: "UNSUPPORTED", error: `${url.protocol}// hrefs are not supported (only http and https)` };
}

function selfLink(item: Record<string, unknown>): string | undefined {
  const links = Array.isArray(item.links) ? (item.links as Array<Record<string, unknown>>) : [];
  const self = links.find((l) => l && l.rel === "self" && typeof l.href === "string");
  if (!self) return undefined;
  try {
    const url = new URL(self.href as string);
    return url.protocol === "http:" || url.protocol === "https:" ? url.toString() : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Drops every entry whose file would be the same as (or a folder of, or the .part of) another's.
 * Linear: each path is looked up once per folder above it (paths are at most MAX_RELATIVE_PATH long).
 */
function withoutCollisions(entries: PlanEntry[], report: (entry: PlanEntry, other: PlanEntry) => void): PlanEntry[] {
  const fold = (p: string) => p.toLowerCase();
  const byPath = new Map<string, PlanEntry>();
  const byFolder = new Map<string, PlanEntry>();
  const clashing = new Map<PlanEntry, PlanEntry>();
  const clash = (a: PlanEntry, b: PlanEntry) => {
    if (!clashing.has(a)) clashing.set(a, b);
    if (!clashing.has(b)) clashing.set(b, a);
  };
  for (const entry of entries) {
    const p = fold(entry.relativePath);
    const same = byPath.get(p) ?? byPath.get(`${p}.part`) ?? (p.endsWith(".part") ? byPath.get(p.slice(0, -5)) : undefined);
    if (same) {
      clash(entry, same);
      continue;
    }
    byPath.set(p, entry);
    const below = byFolder.get(p);
    if (below) clash(entry, below);
    for (let i = p.indexOf("/"); i > 0; i = p.indexOf("/", i + 1)) {
      const folder = p.slice(0, i);
      const file = byPath.get(folder);
      if (file) clash(entry, file);
      if (!byFolder.has(folder)) byFolder.set(folder, entry);
    }
  }
  for (const [entry, other] of clashing) report(entry, other);
  return entries.filter((e) => !clashing.has(e));
}

export function assetError(code: DatasphereError["code"], itemId: string, key: string, href: string | undefined, why: string, cause?: unknown): DatasphereError {
  const where = href ? ` (${displayHref(href)})` : "";
  return new DatasphereError(code, `Item ${preview(itemId)}, asset ${preview(key)}${where}: ${why}`, {
    cause,
    details: { itemId, key, href: href ? displayHref(href) : undefined },
  });
}

function preview(text: string): string {
  return printablePreview(text, 120);
}
