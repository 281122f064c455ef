import { resumeAfter } from "../dataset/cursor";
import type { StacRequest } from "./http";

/**
 * Where a search can continue: the request of the page to read next, how many of its Items were
 * already delivered, and how many Items the search delivered before it (so maxItems holds across
 * resumes). The same idea as the dataset page cursor, with a whole request instead of an href.
 */
export interface SearchCursor {
  kind: "stac-search";
  request: StacRequest;
  skip: number;
  delivered: number;
}

export function isSearchCursor(value: unknown): value is SearchCursor {
  const c = value as SearchCursor | null;
  return !!c && typeof c === "object" && c.kind === "stac-search" && !!c.request && typeof c.request.href === "string" && (c.request.method === "GET" || c.request.method === "POST");
}

/** Follows delivered Items of a search (in delivery order) and answers the cursor at any moment. */
export class SearchPosition {
  private request?: StacRequest;
  private skip: number;
  private delivered: number;

  constructor(start: StacRequest, skip = 0, delivered = 0) {
    this.request = start;
    this.skip = skip;
    this.delivered = delivered;
  }

  /** The Item at `indexInPage` of a page (holding `pageLength` Items, next request `next`) was delivered. */
  itemDelivered(page: { request: StacRequest; next?: StacRequest; length: number }, indexInPage: number): void {
    this.delivered += 1;
    ({ page: this.request, skip: this.skip } = resumeAfter(page.request, page.next, indexInPage, page.length));
  }

  /** The search ended (last page, or maxItems reached): nothing to resume. */
  complete(): void {
    this.request = undefined;
  }

  cursor(): SearchCursor | undefined {
    return this.request ? { kind: "stac-search", request: this.request, skip: this.skip, delivered: this.delivered } : undefined;
  }
}
