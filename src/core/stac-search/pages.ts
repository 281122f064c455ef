import { requireApiOrigin } from "../dataset/http";
import { DatasphereError } from "../errors";
import { fetchJson, type StacHttpOptions, type StacRequest } from "./http";
import { nextRequest, requestKey } from "./next-link";

/** One page of a search: its Items (after a resume's skip and maxItems), and what comes next. */
export interface SearchPage {
  request: StacRequest;
  index: number;
  items: Record<string, unknown>[];
  /** Items of the page left out before `items` (already delivered before a resume). */
  offset: number;
  /** Items the page holds in all. */
  length: number;
  next?: StacRequest;
  /** `numberMatched` (or the older `context.matched`) when the API reports it. */
  numberMatched?: number;
}

export interface PagerOptions extends StacHttpOptions {
  /** Stop after this many Items in all (counting `deliveredBefore`). */
  maxItems?: number;
  /** Items of the first page to leave out. */
  skipFirst?: number;
  /** Items delivered before this run (a resume), counted against maxItems. */
  deliveredBefore?: number;
  /** The auth header's name: a next link may not set it. */
  reservedHeader?: string;
}

/**
 * Follows a search page by page along `rel=next` (GET or POST links, API origin only). Stops on a
 * page without a next link, an empty page, a next request seen before, or maxItems. A page is fetched
 * only when the previous one has been consumed; each is retried with backoff (Retry-After honoured).
 */
export async function* readSearchPages(first: StacRequest, options: PagerOptions): AsyncGenerator<SearchPage, void, undefined> {
  const seen = new Set<string>();
  let request: StacRequest | undefined = first;
  let skip = options.skipFirst ?? 0;
  let delivered = options.deliveredBefore ?? 0;
  const max = options.maxItems;
  for (let index = 0; request !== undefined; index++) {
    if (max !== undefined && delivered >= max) return;
    const current: StacRequest = request;
    seen.add(requestKey(current));
    const what = `search page ${index + 1}`;
    const doc = await fetchJson(current, options, what);
    const page = readPage(doc, current, what, options.reservedHeader);
    if (page.next) {
      if (seen.has(requestKey(page.next))) page.next = undefined;
      else requireApiOrigin(page.next.href, options, `${what}: next link`);
    }
    if (page.features.length === 0) return;
    const offset = Math.min(skip, page.features.length);
    const room = max === undefined ? Infinity : max - delivered;
    const items = page.features.slice(offset, offset + room);
    skip = 0;
    delivered += items.length;
    if (items.length > 0) yield { request: current, index, items, offset, length: page.features.length, next: page.next, numberMatched: page.numberMatched };
    request = page.next;
  }
}

function readPage(doc: unknown, current: StacRequest, what: string, reserved?: string): { features: Record<string, unknown>[]; next?: StacRequest; numberMatched?: number } {
  const d = doc as { type?: unknown; features?: unknown; numberMatched?: unknown; context?: { matched?: unknown } } | null;
  if (!d || typeof d !== "object" || !Array.isArray(d.features)) throw new DatasphereError("PROTOCOL", `${what}: not an ItemCollection (no features array)`);
  const features = (d.features as unknown[]).filter((f): f is Record<string, unknown> => f !== null && typeof f === "object" && !Array.isArray(f));
  const matched = typeof d.numberMatched === "number" ? d.numberMatched : typeof d.context?.matched === "number" ? d.context.matched : undefined;
  return { features, next: nextRequest(d as { links?: unknown }, current, reserved), numberMatched: matched };
}
