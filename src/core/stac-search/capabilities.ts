import { DatasphereError } from "../errors";
import type { SearchMethod, SearchParams } from "./params";

/** What the landing page and /conformance say about an API: read once per config node. */
export interface ApiCapabilities {
  conformsTo: string[];
  /** Search endpoints from the landing page's `rel=search` links, by method. */
  search: Partial<Record<SearchMethod, string>>;
  title?: string;
}

const STAC = "https://api\\.stacspec\\.org/v1\\.[^/#]+";
const CLASSES = {
  itemSearch: new RegExp(`^${STAC}/item-search$`),
  filter: new RegExp(`^${STAC}/item-search#filter$`),
  sort: new RegExp(`^${STAC}/item-search#sort$`),
  fields: new RegExp(`^${STAC}/item-search#fields$`),
  cql2Text: /^http:\/\/www\.opengis\.net\/spec\/cql2\/1\.0\/conf\/cql2-text$/,
  cql2Json: /^http:\/\/www\.opengis\.net\/spec\/cql2\/1\.0\/conf\/cql2-json$/,
};

export function conformsTo(doc: unknown): string[] | undefined {
  const list = (doc as { conformsTo?: unknown } | null)?.conformsTo;
  return Array.isArray(list) ? list.filter((c): c is string => typeof c === "string") : undefined;
}

/** The landing page's link of a relation, resolved against the landing page URL. */
export function linkOf(landing: unknown, rel: string, base: string): Array<{ href: string; method?: string }> {
  const links = (landing as { links?: unknown } | null)?.links;
  if (!Array.isArray(links)) return [];
  const out: Array<{ href: string; method?: string }> = [];
  for (const link of links as Array<{ rel?: unknown; href?: unknown; method?: unknown }>) {
    if (!link || link.rel !== rel || typeof link.href !== "string") continue;
    try {
      out.push({ href: new URL(link.href, base).toString(), method: typeof link.method === "string" ? link.method.toUpperCase() : undefined });
    } catch {
      /* an unusable link is ignored */
    }
  }
  return out;
}

export function readCapabilities(landing: unknown, landingUrl: string, conformance: string[]): ApiCapabilities {
  const search: ApiCapabilities["search"] = {};
  const links = linkOf(landing, "search", landingUrl);
  for (const link of links) {
    const method = link.method === "POST" ? "POST" : "GET";
    search[method] ??= link.href;
  }
  if (links.length === 0) {
    // No search link: the spec's default path beside the landing page, both methods.
    const href = new URL("search", landingUrl.endsWith("/") ? landingUrl : `${landingUrl}/`).toString();
    search.GET = href;
    search.POST = href;
  }
  const title = (landing as { title?: unknown } | null)?.title;
  return { conformsTo: conformance, search, title: typeof title === "string" ? title : undefined };
}

function declares(caps: ApiCapabilities, pattern: RegExp): boolean {
  return caps.conformsTo.some((c) => pattern.test(c));
}

function unsupported(what: string, fix: string, origin: string): DatasphereError {
  return new DatasphereError("UNSUPPORTED", `the STAC API at ${origin} does not support ${what}; ${fix}. No search was sent`);
}

/**
 * Refuses, before any search request, what the API does not declare: a parameter it would silently
 * drop (filter, sortby, fields), a filter language or a method it does not offer. Returns the
 * search endpoint for the method.
 */
export function checkSupported(caps: ApiCapabilities, params: SearchParams, method: SearchMethod, origin: string): string {
  if (!declares(caps, CLASSES.itemSearch)) throw unsupported("Item Search (no item-search conformance class)", "use an API that offers /search", origin);
  if (params.filter !== undefined) {
    if (!declares(caps, CLASSES.filter)) throw unsupported("filter (conformance class item-search#filter)", "remove the filter", origin);
    const text = declares(caps, CLASSES.cql2Text);
    const json = declares(caps, CLASSES.cql2Json);
    if ((text || json) && params.filterLang === "cql2-text" && !text) throw unsupported("CQL2 text filters (cql2-text)", "give the filter as CQL2 JSON", origin);
    if ((text || json) && params.filterLang === "cql2-json" && !json) throw unsupported("CQL2 JSON filters (cql2-json)", "give the filter as CQL2 text", origin);
  }
  if (params.sortby && !declares(caps, CLASSES.sort)) throw unsupported("sortby (conformance class item-search#sort)", "remove sortby", origin);
  if (params.fields && !declares(caps, CLASSES.fields)) throw unsupported("fields (conformance class item-search#fields)", "remove fields", origin);
  const href = caps.search[method];
  if (!href) throw unsupported(`${method} /search (its landing page links search with ${Object.keys(caps.search).join(", ") || "no method"} only)`, `set the method to ${method === "GET" ? "POST" : "GET"}`, origin);
  return href;
}
