import { DatasphereError } from "../errors";
import type { DatasetEvent } from "./events";
import { bodyLimit, get, readJsonBody, requireApiOrigin, withRetries, type ReaderOptions } from "./http";

export interface PageReaderOptions extends ReaderOptions {
  /** Items of the first page to leave out (they were delivered before a resume). */
  skipFirst?: number;
}

interface Page {
  features: Record<string, unknown>[];
  next?: string;
}

/**
 * Reads a dataset `paginate` endpoint page by page, following `rel=next` (API origin only). Stops on
 * a missing next link, an empty page or a next link seen before. Each page is retried with backoff
 * (Retry-After honoured) before the pull fails; a page is fetched only when the previous one has been
 * consumed.
 */
export async function* readPages(url: string, options: PageReaderOptions): AsyncGenerator<DatasetEvent, void, undefined> {
  const seen = new Set<string>();
  let href: string | undefined = url;
  let skip = options.skipFirst ?? 0;
  for (let index = 0; href !== undefined; index++) {
    const current: string = href;
    seen.add(current);
    const page = await withRetries(current, options, () => fetchPage(current, options, index));
    if (page.next !== undefined) {
      if (seen.has(page.next)) page.next = undefined;
      else requireApiOrigin(page.next, options, `dataset page ${index + 1}: next link`);
    }
    if (page.features.length === 0) return;
    const items = skip > 0 ? page.features.slice(skip) : page.features;
    const offset = Math.min(skip, page.features.length);
    skip = 0;
    if (items.length > 0) yield { kind: "items", items, page: { href: current, next: page.next, index, offset, length: page.features.length } };
    href = page.next;
  }
}

async function fetchPage(url: string, options: ReaderOptions, index: number): Promise<Page> {
  const what = `dataset page ${index + 1}`;
  const response = await get(url, options, what, "application/geo+json, application/json");
  const doc = await readJsonBody(response, what, bodyLimit(options));
  if (!doc || typeof doc !== "object" || !Array.isArray((doc as { features?: unknown }).features)) {
    throw new DatasphereError("PROTOCOL", `${what}: not a FeatureCollection (no features array)`);
  }
  const features = ((doc as { features: unknown[] }).features).filter(
    (f): f is Record<string, unknown> => f !== null && typeof f === "object" && !Array.isArray(f),
  );
  return { features, next: nextLink(doc as { links?: unknown }, url) };
}

/** The `rel=next` href, resolved against the page URL. */
export function nextLink(doc: { links?: unknown }, base: string): string | undefined {
  if (!Array.isArray(doc.links)) return undefined;
  for (const link of doc.links as Array<{ rel?: unknown; href?: unknown }>) {
    if (link && link.rel === "next" && typeof link.href === "string" && link.href !== "") {
      try {
        return new URL(link.href, base).toString();
      } catch {
        throw new DatasphereError("PROTOCOL", `dataset page: next link is not a URL`);
      }
    }
  }
  return undefined;
}
