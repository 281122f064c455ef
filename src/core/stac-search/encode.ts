import type { SearchParams } from "./params";

/** The search as GET query parameters (STAC API Item Search, GET form). */
export function searchQuery(p: SearchParams): URLSearchParams {
  const q = new URLSearchParams();
  if (p.collections) q.set("collections", p.collections.join(","));
  if (p.ids) q.set("ids", p.ids.join(","));
  if (p.bbox) q.set("bbox", p.bbox.join(","));
  if (p.intersects) q.set("intersects", JSON.stringify(p.intersects));
  if (p.datetime) q.set("datetime", p.datetime);
  if (p.limit !== undefined) q.set("limit", String(p.limit));
  if (p.sortby) q.set("sortby", p.sortby.map((s) => `${s.direction === "desc" ? "-" : "+"}${s.field}`).join(","));
  if (p.fields) q.set("fields", [...p.fields.include, ...p.fields.exclude.map((f) => `-${f}`)].join(","));
  if (p.filter !== undefined) {
    q.set("filter", typeof p.filter === "string" ? p.filter : JSON.stringify(p.filter));
    q.set("filter-lang", p.filterLang ?? "cql2-text");
  }
  return q;
}

/** The search as a POST JSON body (STAC API Item Search, POST form). */
export function searchBody(p: SearchParams): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (p.collections) body.collections = p.collections;
  if (p.ids) body.ids = p.ids;
  if (p.bbox) body.bbox = p.bbox;
  if (p.intersects) body.intersects = p.intersects;
  if (p.datetime) body.datetime = p.datetime;
  if (p.limit !== undefined) body.limit = p.limit;
  if (p.sortby) body.sortby = p.sortby;
  if (p.fields) body.fields = p.fields;
  if (p.filter !== undefined) {
    body.filter = p.filter;
    body["filter-lang"] = p.filterLang ?? (typeof p.filter === "string" ? "cql2-text" : "cql2-json");
  }
  return body;
}
