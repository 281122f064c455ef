import type { IncomingMessage, ServerResponse } from "node:http";
import { checkCql2Json, evaluateCql2, parseCql2Text, type Cql2 } from "./cql2";
import { decodeCursor, encodeCursor, parseInstant, Selection, type DatasetSource } from "./datasets";
import type { ConnectionFaults, Faults } from "./faults";
import { FaultyWriter } from "./faulty-writer";
import { sendJson } from "./http-util";

/** A collection of the STAC API: the first generated dataset package whose Items carry that collection id. */
export interface StacApiCollection {
  id: string;
  pkg: string;
  source: DatasetSource;
}

/** One collection per collection id: the first dataset package that has it. */
export function firstPerCollection(list: StacApiCollection[]): StacApiCollection[] {
  const seen = new Map<string, StacApiCollection>();
  for (const c of list) if (!seen.has(c.id)) seen.set(c.id, c);
  return [...seen.values()];
}

export interface StacApiDeps {
  baseUrl(): string;
  faults: Faults;
  collections(): StacApiCollection[];
  itemText(pkg: string, index: number): string | Promise<string>;
}

/** How the API answers, changeable by tests. */
export interface StacApiSettings {
  /** POST next links: `merge` (body {token}, merge true), `body` (the whole body again), `headers` (token in a header). */
  postNext: "merge" | "body" | "headers";
  /** Conformance classes left out of conformsTo (to test unsupported parameters). */
  withoutClasses: string[];
  /** When set, every request must carry this header with this value (401 otherwise). */
  requireHeader?: { name: string; value: string };
  /** Largest page size (limit is capped to it, as stac-fastapi does). */
  maxLimit: number;
}

/** One search as the sandbox received it: raw, and as it understood it. */
export interface StacSearchRecord {
  method: string;
  query: Record<string, string>;
  body?: unknown;
  headers: Record<string, string | string[] | undefined>;
  parsed: ParsedSearch;
}

export interface ParsedSearch {
  collections?: string[];
  ids?: string[];
  bbox?: number[];
  intersects?: Record<string, unknown>;
  datetime?: string;
  limit: number;
  sortby?: Array<{ field: string; direction: "asc" | "desc" }>;
  fields?: { include: string[]; exclude: string[] };
  filter?: Cql2;
  filterLang?: string;
  position: number;
}

const STAC = "https://api.stacspec.org/v1.0.0";
export const STAC_API_CONFORMANCE = [
  `${STAC}/core`,
  `${STAC}/collections`,
  `${STAC}/ogcapi-features`,
  `${STAC}/item-search`,
  `${STAC}-rc.2/item-search#filter`,
  `${STAC}/item-search#sort`,
  `${STAC}/item-search#fields`,
  "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
  "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
  "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
  "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
  "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
];

export const STAC_API_PATH = "/stac-api";
const MAX_BODY = 1024 * 1024;
const MAX_RECORDS = 1000;

/** The sandbox's STAC API (landing page, conformance, collections, Item Search GET and POST) over its generated Items. */
export class StacApi {
  readonly settings: StacApiSettings = { postNext: "merge", withoutClasses: [], maxLimit: 1000 };
  /** The last searches received (at most 1000). */
  readonly searches: StacSearchRecord[] = [];
  pagesServed = 0;

  constructor(private readonly deps: StacApiDeps) {}

  get url(): string {
    return `${this.deps.baseUrl()}${STAC_API_PATH}/`;
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname.slice(STAC_API_PATH.length).replace(/\/+$/, "") || "/";
    const required = this.settings.requireHeader;
    if (required && req.headers[required.name.toLowerCase()] !== required.value) return apiError(res, 401, "Unauthorized", "missing or wrong credentials");
    if (path === "/search") {
      if (req.method !== "GET" && req.method !== "POST") return apiError(res, 405, "MethodNotAllowed", `${req.method} /search`);
      return this.search(req, res, url);
    }
    if (req.method !== "GET") return apiError(res, 405, "MethodNotAllowed", `${req.method} ${path}`);
    if (path === "/") return sendJson(res, 200, this.landing());
    if (path === "/conformance") return sendJson(res, 200, { conformsTo: this.conformance() });
    if (path === "/collections") return sendJson(res, 200, { collections: this.deps.collections().map((c) => this.collection(c)), links: [this.link("self", "/collections")] });
    const m = /^\/collections\/([^/]+)$/.exec(path);
    const found = m && this.deps.collections().find((c) => c.id === decodeURIComponent(m[1]));
    if (found) return sendJson(res, 200, this.collection(found));
    return apiError(res, 404, "NotFoundError", `no ${path}`);
  }

  private conformance(): string[] {
    return STAC_API_CONFORMANCE.filter((c) => !this.settings.withoutClasses.includes(c));
  }

  private link(rel: string, path: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { rel, href: `${this.deps.baseUrl()}${STAC_API_PATH}${path}`, type: rel === "search" ? "application/geo+json" : "application/json", ...extra };
  }

  private landing(): Record<string, unknown> {
    return {
      type: "Catalog", stac_version: "1.0.0", id: "datasphere-sandbox-stac-api", title: "Data Sphere sandbox STAC API",
      description: "Item Search over the sandbox's generated Items", conformsTo: this.conformance(),
      links: [
        this.link("self", "/"), this.link("root", "/"), this.link("conformance", "/conformance"), this.link("data", "/collections"),
        this.link("search", "/search", { method: "GET" }), this.link("search", "/search", { method: "POST" }),
        ...this.deps.collections().map((c) => this.link("child", `/collections/${encodeURIComponent(c.id)}`)),
      ],
    };
  }

  private collection(c: StacApiCollection): Record<string, unknown> {
    const last = c.source.count > 0 ? new Date(c.source.datetimeOf(c.source.count - 1)).toISOString() : null;
    const first = c.source.count > 0 ? new Date(c.source.datetimeOf(0)).toISOString() : null;
    return {
      type: "Collection", stac_version: "1.0.0", id: c.id, description: `Sandbox collection ${c.id} (${c.source.count} Items)`, license: "other",
      extent: { spatial: { bbox: [[-180, -90, 180, 90]] }, temporal: { interval: [[first, last]] } },
      links: [this.link("self", `/collections/${encodeURIComponent(c.id)}`), this.link("root", "/")],
    };
  }

  private async search(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    let raw: Record<string, unknown>;
    let body: unknown;
    if (req.method === "POST") {
      const text = await readBody(req);
      if (text === undefined) return apiError(res, 413, "RequestTooLarge", `a search body is at most ${MAX_BODY} bytes`);
      try {
        body = JSON.parse(text || "{}");
      } catch {
        return apiError(res, 400, "BadRequest", "the body is not JSON");
      }
      if (!body || typeof body !== "object" || Array.isArray(body)) return apiError(res, 400, "BadRequest", "the body must be a JSON object");
      raw = { ...(body as Record<string, unknown>) };
      const headerToken = req.headers["x-page-token"];
      if (typeof headerToken === "string") raw.token = headerToken;
    } else {
      raw = Object.fromEntries(url.searchParams);
    }
    const parsed = this.parse(raw, req.method === "POST");
    if (typeof parsed === "string") return apiError(res, 400, "BadRequest", parsed);
    this.searches.push({ method: req.method ?? "", query: Object.fromEntries(url.searchParams), body, headers: { ...req.headers }, parsed });
    if (this.searches.length > MAX_RECORDS) this.searches.splice(0, this.searches.length - MAX_RECORDS);

    const failure = this.deps.faults.takeFailure("stac-search");
    if (failure) {
      const headers: Record<string, string> = failure.retryAfter === undefined ? {} : { "retry-after": String(failure.retryAfter) };
      return apiError(res, failure.status, failure.status === 429 ? "TooManyRequests" : "ServiceUnavailable", "injected failure", headers);
    }
    const cf = this.deps.faults.forConnection("stac-search");
    if (cf.stall) {
      this.deps.faults.injected++;
      return;
    }
    const page = await this.page(parsed);
    const links: Record<string, unknown>[] = [this.link("root", "/")];
    if (page.next !== undefined) links.push(this.nextLink(req.method === "POST", url, raw, page.next));
    const doc: Record<string, unknown> = { type: "FeatureCollection", features: "__FEATURES__", links, numberReturned: page.count };
    if (page.matched !== undefined) doc.numberMatched = page.matched;
    const text = JSON.stringify(doc).replace('"__FEATURES__"', `[${page.features}]`);
    this.pagesServed++;
    await writeBody(res, text, cf, () => this.deps.faults.injected++);
  }

  private nextLink(post: boolean, url: URL, raw: Record<string, unknown>, position: number): Record<string, unknown> {
    const token = encodeCursor(position);
    if (!post) {
      const next = new URL(`${this.deps.baseUrl()}${STAC_API_PATH}/search`);
      for (const [k, v] of url.searchParams) if (k !== "token") next.searchParams.set(k, v);
      next.searchParams.set("token", token);
      return { rel: "next", type: "application/geo+json", method: "GET", href: next.toString() };
    }
    const href = `${this.deps.baseUrl()}${STAC_API_PATH}/search`;
    const { token: _old, ...rest } = raw;
    if (this.settings.postNext === "merge") return { rel: "next", type: "application/geo+json", method: "POST", href, body: { token }, merge: true };
    if (this.settings.postNext === "body") return { rel: "next", type: "application/geo+json", method: "POST", href, body: { ...rest, token }, merge: false };
    return { rel: "next", type: "application/geo+json", method: "POST", href, body: rest, merge: false, headers: { "x-page-token": token } };
  }

  /** Checks a search; a string is the 400 reason. GET values are texts, POST values JSON. */
  private parse(raw: Record<string, unknown>, post: boolean): ParsedSearch | string {
    const list = (key: string): string[] | undefined | string => {
      const v = raw[key];
      if (v === undefined) return undefined;
      if (post) return Array.isArray(v) && v.every((s) => typeof s === "string") ? (v as string[]) : `${key} must be an array of strings`;
      return typeof v === "string" ? v.split(",").filter((s) => s !== "") : `${key} must be a comma-separated list`;
    };
    const out: ParsedSearch = { limit: 10, position: 0 };
    for (const key of ["collections", "ids"] as const) {
      const v = list(key);
      if (typeof v === "string") return v;
      if (v) out[key] = v;
    }
    if (raw.bbox !== undefined) {
      const box = post ? raw.bbox : String(raw.bbox).split(",").map(Number);
      if (!Array.isArray(box) || (box.length !== 4 && box.length !== 6) || !box.every((n) => typeof n === "number" && Number.isFinite(n))) return "bbox must be 4 or 6 numbers";
      out.bbox = box as number[];
    }
    if (raw.intersects !== undefined) {
      const parsed = jsonParam(raw.intersects, post);
      if (!parsed) return "intersects is not GeoJSON";
      const g = parsed.value;
      if (!g || typeof g !== "object" || typeof (g as { type?: unknown }).type !== "string") return "intersects must be a GeoJSON geometry";
      out.intersects = g as Record<string, unknown>;
    }
    if (out.bbox && out.intersects) return "bbox and intersects are mutually exclusive";
    if (raw.datetime !== undefined) {
      if (typeof raw.datetime !== "string" || parseDatetime(raw.datetime) === undefined) return `datetime "${String(raw.datetime).slice(0, 60)}" is not an RFC 3339 instant or interval`;
      out.datetime = raw.datetime;
    }
    if (raw.limit !== undefined) {
      const n = Number(raw.limit);
      if (!Number.isInteger(n) || n < 1 || (post && typeof raw.limit !== "number")) return "limit must be a positive integer";
      out.limit = Math.min(n, this.settings.maxLimit);
    }
    if (raw.sortby !== undefined) {
      const entries = post ? raw.sortby : String(raw.sortby).split(",").map((s) => ({ field: s.replace(/^[+\- ]/, ""), direction: s.startsWith("-") ? "desc" : "asc" }));
      if (!Array.isArray(entries) || !entries.every((e) => e && typeof e.field === "string" && (e.direction === "asc" || e.direction === "desc"))) return "sortby must be [{field, direction}]";
      for (const e of entries as Array<{ field: string }>) if (e.field !== "datetime" && e.field !== "properties.datetime") return `the sandbox sorts by datetime only, not "${e.field.slice(0, 40)}"`;
      out.sortby = entries as ParsedSearch["sortby"];
    }
    if (raw.fields !== undefined) {
      if (post) {
        const f = raw.fields as { include?: unknown; exclude?: unknown };
        const ok = (v: unknown) => v === undefined || (Array.isArray(v) && v.every((s) => typeof s === "string"));
        if (!f || typeof f !== "object" || !ok(f.include) || !ok(f.exclude)) return "fields must be {include: [...], exclude: [...]}";
        out.fields = { include: (f.include as string[]) ?? [], exclude: (f.exclude as string[]) ?? [] };
      } else {
        const names = String(raw.fields).split(",").filter((s) => s !== "");
        out.fields = { include: names.filter((n) => !n.startsWith("-")).map((n) => n.replace(/^\+/, "")), exclude: names.filter((n) => n.startsWith("-")).map((n) => n.slice(1)) };
      }
    }
    if (raw.filter !== undefined) {
      const lang = raw["filter-lang"] ?? (post ? "cql2-json" : "cql2-text");
      out.filterLang = String(lang);
      if (lang === "cql2-json") {
        const parsed = jsonParam(raw.filter, post);
        if (!parsed) return "filter is not JSON (filter-lang cql2-json)";
        const f = parsed.value;
        const problem = checkCql2Json(f);
        if (problem) return problem;
        out.filter = f as Cql2;
      } else if (lang === "cql2-text") {
        if (typeof raw.filter !== "string") return "a cql2-text filter must be a string";
        const f = parseCql2Text(raw.filter);
        if (typeof f === "string") return f;
        out.filter = f;
      } else return `filter-lang "${String(lang).slice(0, 20)}" is not supported`;
    }
    if (raw.token !== undefined) {
      const p = typeof raw.token === "string" ? decodeCursor(raw.token) : undefined;
      if (p === undefined) return "token is not valid";
      out.position = p;
    }
    return out;
  }

  /** One page: scans the selected collections (datetime order) from the position, keeping what matches. */
  private async page(q: ParsedSearch): Promise<{ features: string; count: number; next?: number; matched?: number }> {
    const all = this.deps.collections();
    const chosen = q.collections ? q.collections.map((id) => all.find((c) => c.id === id)).filter((c): c is StacApiCollection => !!c) : all;
    const range = q.datetime ? parseDatetime(q.datetime)! : [undefined, undefined];
    const order = q.sortby?.[0]?.direction === "desc" ? "new" : "old";
    const segments = chosen.map((c) => {
      const [lo, hi] = c.source.range(range[0], range[1]);
      return { c, selection: new Selection(lo, hi, order) };
    });
    const total = segments.reduce((n, s) => n + s.selection.length, 0);
    const box = q.bbox ? flatBox(q.bbox) : q.intersects ? geometryBox(q.intersects) : undefined;
    const ids = q.ids ? new Set(q.ids) : undefined;
    const needsItem = !!(box || ids || q.filter || q.fields);
    const texts: string[] = [];
    let p = q.position;
    while (p < total && texts.length < q.limit) {
      let at = p;
      const segment = segments.find((s) => (at < s.selection.length ? true : ((at -= s.selection.length), false)))!;
      const pending = this.deps.itemText(segment.c.pkg, segment.selection.indexAt(at));
      const text = typeof pending === "string" ? pending : await pending;
      p++;
      if (!needsItem) {
        texts.push(text);
        continue;
      }
      const item = JSON.parse(text) as Record<string, unknown>;
      if (ids && !ids.has(String(item.id))) continue;
      if (box && !intersects(box, item.bbox as number[])) continue;
      if (q.filter && !evaluateCql2(q.filter, item)) continue;
      texts.push(q.fields ? JSON.stringify(applyFields(item, q.fields)) : text);
    }
    return { features: texts.join(","), count: texts.length, next: p < total ? p : undefined, matched: needsItem ? undefined : total };
  }
}

function apiError(res: ServerResponse, status: number, code: string, description: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { code, description }, headers);
}

/** A JSON-valued search parameter: as sent in a POST body, parsed from its text in a GET query; undefined when that text is not JSON. */
function jsonParam(value: unknown, post: boolean): { value: unknown } | undefined {
  if (post) return { value };
  try {
    return { value: JSON.parse(String(value)) as unknown };
  } catch {
    return undefined;
  }
}

function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        req.removeAllListeners("data");
        req.resume();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

async function writeBody(res: ServerResponse, text: string, cf: ConnectionFaults, onInjected: () => void): Promise<void> {
  res.writeHead(200, { "content-type": "application/geo+json", "content-length": Buffer.byteLength(text) });
  const writer = new FaultyWriter(res, cf, onInjected);
  if (!writer.checkImmediate()) return;
  if (writer.write(text, false) !== "gone") await writer.end();
}

/** An instant or an interval with open ends (`..` or empty); undefined when not valid. */
export function parseDatetime(text: string): [number | undefined, number | undefined] | undefined {
  const parts = text.split("/");
  if (parts.length > 2) return undefined;
  if (parts.length === 1) {
    const ms = parseInstant(parts[0], false);
    return ms === undefined || parts[0] === ".." ? undefined : [ms, ms];
  }
  const end = (s: string, isEnd: boolean): number | undefined | null => (s === "" || s === ".." ? undefined : parseInstant(s, isEnd) ?? null);
  const a = end(parts[0], false);
  const b = end(parts[1], true);
  if (a === null || b === null || (a === undefined && b === undefined)) return undefined;
  if (a !== undefined && b !== undefined && a > b) return undefined;
  return [a, b];
}

function flatBox(b: number[]): number[] {
  return b.length === 6 ? [b[0], b[1], b[3], b[4]] : b;
}

/** The bounding box of a GeoJSON geometry (the sandbox tests `intersects` against it). */
function geometryBox(g: Record<string, unknown>): number[] {
  const box = [Infinity, Infinity, -Infinity, -Infinity];
  const visit = (c: unknown): void => {
    if (Array.isArray(c) && typeof c[0] === "number") {
      box[0] = Math.min(box[0], c[0] as number);
      box[1] = Math.min(box[1], c[1] as number);
      box[2] = Math.max(box[2], c[0] as number);
      box[3] = Math.max(box[3], c[1] as number);
    } else if (Array.isArray(c)) c.forEach(visit);
  };
  visit(g.coordinates);
  for (const child of (g.geometries as Record<string, unknown>[] | undefined) ?? []) visit(child.coordinates);
  return box;
}

function intersects(a: number[], b: number[] | undefined): boolean {
  if (!Array.isArray(b)) return false;
  return a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3];
}

/** The fields extension, simply: include keeps the listed paths (plus type, id, collection), exclude removes. */
function applyFields(item: Record<string, unknown>, fields: { include: string[]; exclude: string[] }): Record<string, unknown> {
  let out: Record<string, unknown> = item;
  if (fields.include.length > 0) {
    out = { type: item.type, id: item.id, collection: item.collection };
    for (const path of fields.include) {
      const [head, ...rest] = path.split(".");
      if (rest.length === 0) out[head] = item[head];
      else {
        const inner = (out[head] ??= {}) as Record<string, unknown>;
        inner[rest.join(".")] = (item[head] as Record<string, unknown> | undefined)?.[rest.join(".")];
      }
    }
  } else out = { ...item, properties: { ...(item.properties as object) } };
  for (const path of fields.exclude) {
    const [head, ...rest] = path.split(".");
    if (rest.length === 0) delete out[head];
    else delete (out[head] as Record<string, unknown> | undefined)?.[rest.join(".")];
  }
  return out;
}
