import { normalizeDateParam } from "../dataset/dates";
import { DatasphereError } from "../errors";
import { preview } from "../redact";

export type FilterLang = "cql2-json" | "cql2-text";
export type SearchMethod = "GET" | "POST";

export interface SortField {
  field: string;
  direction: "asc" | "desc";
}

export interface FieldsSpec {
  include: string[];
  exclude: string[];
}

/** An Item Search as the STAC API spec defines it, checked and normalised (nothing unset is present). */
export interface SearchParams {
  collections?: string[];
  ids?: string[];
  bbox?: number[];
  intersects?: Record<string, unknown>;
  datetime?: string;
  limit?: number;
  sortby?: SortField[];
  fields?: FieldsSpec;
  /** A CQL2 JSON object, or a CQL2 text. */
  filter?: Record<string, unknown> | string;
  filterLang?: FilterLang;
}

/** What a user may give for each parameter (node properties, msg): strings, arrays or objects. */
export type SearchInput = Partial<Record<keyof SearchParams, unknown>>;

const GEOMETRY_TYPES = new Set(["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon", "GeometryCollection"]);
const MAX_LIMIT = 10_000;
const FIELD_NAME = /^[A-Za-z0-9_:.-]+$/;

function bad(message: string): DatasphereError {
  return new DatasphereError("BAD_REQUEST", `${message}; no request was sent`);
}

function isUnset(value: unknown): boolean {
  return value === undefined || value === null || value === "" || (Array.isArray(value) && value.length === 0);
}

/** A list of names: an array of strings or one comma-separated text. */
function nameList(value: unknown, field: string): string[] | undefined {
  if (isUnset(value)) return undefined;
  const list = typeof value === "string" ? value.split(",") : Array.isArray(value) ? value : undefined;
  if (!list || list.some((v) => typeof v !== "string")) throw bad(`${field}: expected a list of names (an array of strings or "a,b")`);
  const names = (list as string[]).map((s) => s.trim()).filter((s) => s !== "");
  return names.length > 0 ? names : undefined;
}

function parseBbox(value: unknown): number[] | undefined {
  if (isUnset(value)) return undefined;
  const raw = typeof value === "string" ? value.split(",").map((s) => (s.trim() === "" ? NaN : Number(s))) : Array.isArray(value) ? value : undefined;
  if (!raw || !raw.every((n) => typeof n === "number" && Number.isFinite(n))) throw bad(`bbox: expected 4 or 6 numbers (west,south,east,north), got ${preview(JSON.stringify(value) ?? String(value), 80)}`);
  const box = raw as number[];
  if (box.length !== 4 && box.length !== 6) throw bad(`bbox: expected 4 or 6 numbers, got ${box.length}`);
  const half = box.length / 2;
  const [west, south, east, north] = [box[0], box[1], box[half], box[half + 1]];
  if (south < -90 || north > 90 || south > north) throw bad("bbox: latitudes must be within -90..90 with south <= north");
  if (west < -180 || east > 180 || west > 180 || east < -180) throw bad("bbox: longitudes must be within -180..180");
  return box;
}

function parseIntersects(value: unknown): Record<string, unknown> | undefined {
  if (isUnset(value)) return undefined;
  let geometry = value;
  if (typeof value === "string") {
    try {
      geometry = JSON.parse(value);
    } catch {
      throw bad("intersects: not JSON (expected a GeoJSON geometry)");
    }
  }
  if (geometry && typeof geometry === "object" && (geometry as { type?: unknown }).type === "Feature") geometry = (geometry as { geometry?: unknown }).geometry;
  const g = geometry as { type?: unknown; coordinates?: unknown; geometries?: unknown } | null;
  if (!g || typeof g !== "object" || Array.isArray(g) || typeof g.type !== "string" || !GEOMETRY_TYPES.has(g.type)) {
    throw bad("intersects: expected a GeoJSON geometry (Point, Polygon, MultiPolygon ...)");
  }
  if (g.type === "GeometryCollection" ? !Array.isArray(g.geometries) : !Array.isArray(g.coordinates)) throw bad(`intersects: a ${g.type} without ${g.type === "GeometryCollection" ? "geometries" : "coordinates"}`);
  return g as Record<string, unknown>;
}

const PLAIN_DATE = /^\d{4}-\d{2}-\d{2}$/;

/** One end of a datetime: RFC 3339 UTC; a plain date is the start (or, as an end, the last instant) of that day. */
function datetimeEnd(value: unknown, end: boolean): string | undefined {
  if (value === ".." || value === "") return undefined;
  if (typeof value === "string" && PLAIN_DATE.test(value.trim())) {
    const day = value.trim();
    const check = normalizeDateParam(`${day}T00:00:00Z`, "datetime");
    if (Number.isNaN(Date.parse(check!))) throw bad(`datetime: "${day}" is not a date`);
    return end ? `${day}T23:59:59.999Z` : `${day}T00:00:00Z`;
  }
  try {
    return normalizeDateParam(value, "datetime");
  } catch (error) {
    throw bad((error as Error).message);
  }
}

/**
 * `datetime`: an instant, or an interval `start/end` where either end may be open (`..` or empty).
 * Also accepted: `[start, end]`, `{ start, end }`, a Date or epoch ms. A plain date as an instant
 * means that whole day (as pystac-client does).
 */
function parseDatetime(value: unknown): string | undefined {
  if (isUnset(value)) return undefined;
  let ends: [unknown, unknown] | undefined;
  if (Array.isArray(value)) {
    if (value.length !== 2) throw bad("datetime: an interval array needs two ends [start, end] (null for open)");
    ends = [value[0] ?? "..", value[1] ?? ".."];
  } else if (value && typeof value === "object" && !(value instanceof Date)) {
    const o = value as { start?: unknown; end?: unknown };
    ends = [o.start ?? "..", o.end ?? ".."];
  } else if (typeof value === "string" && value.includes("/")) {
    const [a, b, ...rest] = value.split("/");
    if (rest.length > 0) throw bad("datetime: more than one '/'");
    ends = [a.trim(), b.trim()];
  }
  if (!ends) {
    if (typeof value === "string" && PLAIN_DATE.test(value.trim())) return `${datetimeEnd(value, false)}/${datetimeEnd(value, true)}`;
    return datetimeEnd(value, false);
  }
  const start = datetimeEnd(ends[0], false);
  const end = datetimeEnd(ends[1], true);
  if (start === undefined && end === undefined) throw bad("datetime: both ends open ('../..'); leave datetime empty instead");
  if (start !== undefined && end !== undefined && Date.parse(start) > Date.parse(end)) throw bad(`datetime: start ${start} is after end ${end}`);
  return `${start ?? ".."}/${end ?? ".."}`;
}

function parseLimit(value: unknown): number | undefined {
  if (isUnset(value)) return undefined;
  const n = typeof value === "string" ? Number(value.trim()) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > MAX_LIMIT) throw bad(`limit: expected a whole number 1..${MAX_LIMIT}`);
  return n;
}

function checkFieldName(name: string, what: string): string {
  if (!FIELD_NAME.test(name)) throw bad(`${what}: "${preview(name, 60)}" is not a field name`);
  return name;
}

/** `sortby`: "-datetime,+id", ["-datetime"], or [{ field, direction }]. */
function parseSortby(value: unknown): SortField[] | undefined {
  if (isUnset(value)) return undefined;
  const list = typeof value === "string" ? value.split(",") : Array.isArray(value) ? value : [value];
  const out: SortField[] = [];
  for (const entry of list) {
    if (typeof entry === "string") {
      const text = entry.trim();
      if (text === "") continue;
      const direction = text.startsWith("-") ? "desc" : "asc";
      out.push({ field: checkFieldName(text.replace(/^[+\- ]/, "").trim(), "sortby"), direction });
    } else if (entry && typeof entry === "object" && typeof (entry as SortField).field === "string") {
      const d = String((entry as SortField).direction ?? "asc").toLowerCase();
      if (d !== "asc" && d !== "desc") throw bad(`sortby: direction must be "asc" or "desc"`);
      out.push({ field: checkFieldName((entry as SortField).field, "sortby"), direction: d });
    } else {
      throw bad(`sortby: expected "-datetime,+id" or [{ "field": "datetime", "direction": "desc" }]`);
    }
  }
  return out.length > 0 ? out : undefined;
}

/** `fields`: "id,-geometry", ["id", "-geometry"] or { include: [...], exclude: [...] }. */
function parseFields(value: unknown): FieldsSpec | undefined {
  if (isUnset(value)) return undefined;
  const spec: FieldsSpec = { include: [], exclude: [] };
  if (typeof value === "string" || Array.isArray(value)) {
    const list = typeof value === "string" ? value.split(",") : value;
    for (const entry of list) {
      if (typeof entry !== "string") throw bad("fields: expected names");
      const text = entry.trim();
      if (text === "") continue;
      if (text.startsWith("-")) spec.exclude.push(checkFieldName(text.slice(1), "fields"));
      else spec.include.push(checkFieldName(text.replace(/^\+/, ""), "fields"));
    }
  } else if (typeof value === "object") {
    const o = value as { include?: unknown; exclude?: unknown };
    spec.include = (nameList(o.include, "fields.include") ?? []).map((n) => checkFieldName(n, "fields"));
    spec.exclude = (nameList(o.exclude, "fields.exclude") ?? []).map((n) => checkFieldName(n, "fields"));
  } else {
    throw bad("fields: expected \"id,-geometry\" or { include, exclude }");
  }
  return spec.include.length + spec.exclude.length > 0 ? spec : undefined;
}

function parseFilter(value: unknown, lang: unknown): { filter?: Record<string, unknown> | string; filterLang?: FilterLang } {
  if (!isUnset(lang) && lang !== "cql2-json" && lang !== "cql2-text") throw bad(`filter-lang must be "cql2-json" or "cql2-text"`);
  if (isUnset(value)) return {};
  if (typeof value === "string") {
    const text = value.trim();
    if (lang === "cql2-json" || (lang === undefined || lang === "" || lang === null) && text.startsWith("{")) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw bad("filter: cql2-json filter is not JSON");
      }
      if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw bad("filter: cql2-json filter must be a JSON object");
      return { filter: parsed as Record<string, unknown>, filterLang: "cql2-json" };
    }
    return { filter: text, filterLang: "cql2-text" };
  }
  if (typeof value === "object" && !Array.isArray(value)) {
    if (lang === "cql2-text") throw bad("filter: an object is CQL2 JSON, but filter-lang says cql2-text");
    return { filter: value as Record<string, unknown>, filterLang: "cql2-json" };
  }
  throw bad("filter: expected a CQL2 JSON object or a CQL2 text");
}

/** Checks and normalises every parameter; a bad one is a BAD_REQUEST naming it (nothing sent). */
export function normalizeSearch(input: SearchInput & { "filter-lang"?: unknown }): SearchParams {
  const params: SearchParams = {
    collections: nameList(input.collections, "collections"),
    ids: nameList(input.ids, "ids"),
    bbox: parseBbox(input.bbox),
    intersects: parseIntersects(input.intersects),
    datetime: parseDatetime(input.datetime),
    limit: parseLimit(input.limit),
    sortby: parseSortby(input.sortby),
    fields: parseFields(input.fields),
    ...parseFilter(input.filter, input.filterLang ?? input["filter-lang"]),
  };
  if (params.bbox && params.intersects) throw bad("bbox and intersects cannot both be set (the STAC API spec allows one)");
  for (const key of Object.keys(params) as Array<keyof SearchParams>) if (params[key] === undefined) delete params[key];
  return params;
}

/** maxItems: empty or 0 = no limit. */
export function parseMaxItems(value: unknown): number | undefined {
  if (isUnset(value) || value === 0 || value === "0") return undefined;
  const n = typeof value === "string" ? Number(value.trim()) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0) throw bad("maxItems: expected a whole number (0 = no limit)");
  return n;
}

export function parseMethod(value: unknown): SearchMethod {
  if (isUnset(value)) return "GET";
  const m = String(value).toUpperCase();
  if (m !== "GET" && m !== "POST") throw bad(`method must be GET or POST`);
  return m;
}
