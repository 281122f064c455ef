import { anySignal } from "../abort";
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
 * page without a next link, an empty page, a next request seen before, or maxItems. The next page is
 * read ahead while the current one is consumed: at most one page in flight and one handed out, so a
 * slow consumer holds two pages at most. Each is retried with backoff (Retry-After honoured); a page
 * read ahead that is no longer wanted (the consumer stopped) is aborted.
 */
export async function* readSearchPages(first: StacRequest, options: PagerOptions): AsyncGenerator<SearchPage, void, undefined> {
  const seen = new Set<string>();
  let skip = options.skipFirst ?? 0;
  let delivered = options.deliveredBefore ?? 0;
  const max = options.maxItems;
  if (max !== undefined && delivered >= max) return;
  const ahead = new AbortController();
  const fetchOptions: StacHttpOptions = { ...options, signal: anySignal([options.signal, ahead.signal]) };
  const read = (request: StacRequest, index: number): Promise<unknown> => {
    seen.add(requestKey(request));
    const reading = fetchJson(request, fetchOptions, `search page ${index + 1}`);
    reading.catch(() => undefined); // a failure counts when the page is awaited, not before
    return reading;
  };
  let current = first;
  let pending = read(first, 0);
  try {
    for (let index = 0; ; index++) {
      const what = `search page ${index + 1}`;
      const page = readPage(await pending, current, what, options.reservedHeader);
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
      const next = max !== undefined && delivered >= max ? undefined : page.next;
      if (next) pending = read(next, index + 1);
      if (items.length > 0) yield { request: current, index, items, offset, length: page.features.length, next: page.next, numberMatched: page.numberMatched };
      if (!next) return;
      current = next;
    }
  } finally {
    ahead.abort();
  }
}

function readPage(doc: unknown, current: StacRequest, what: string, reserved?: string): { features: Record<string, unknown>[]; next?: StacRequest; numberMatched?: number } {
  const d = doc as { type?: unknown; features?: unknown; numberMatched?: unknown; context?: { matched?: unknown } } | null;
  if (!d || typeof d !== "object" || !Array.isArray(d.features)) throw new DatasphereError("PROTOCOL", `${what}: not an ItemCollection (no features array)`);
  const features = (d.features as unknown[]).filter((f): f is Record<string, unknown> => f !== null && typeof f === "object" && !Array.isArray(f));
  const matched = typeof d.numberMatched === "number" ? d.numberMatched : typeof d.context?.matched === "number" ? d.context.matched : undefined;
  return { features, next: nextRequest(d as { links?: unknown }, current, reserved), numberMatched: matched };
}
