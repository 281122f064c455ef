import type { DatasetOrder } from "../endpoints";
import { DatasphereError } from "../errors";
import { DEFAULT_TIE_LIMITS, TieLookup, TieSet, type TieLimits } from "./tie-set";

/**
 * Where a pull can continue. Streams: the datetime of the last delivered Item plus the ids of the
 * delivered Items that share that datetime (ties), so resuming with `from` (order old) or `to`
 * (order new) set to that datetime and skipping those ids yields exactly the missing Items, given
 * that the service treats `from`/`to` as inclusive. Pages: the page to read next, and how many of
 * its Items were already delivered.
 */
export type ResumeCursor = StreamCursor | PageCursor;

export interface StreamCursor {
  kind: "stream";
  package: string;
  order: DatasetOrder;
  datetime: string;
  /** `collection/id` of the delivered Items whose datetime equals `datetime` (the first 1,000). */
  skipIds: string[];
  /** Past 1,000 such Items: 8-byte SHA-256 prefixes of their keys, base64 (at most a million). */
  skipHashes?: string;
  /** Past a million such Items: how many were not recorded; a resume may send these again (same ids). */
  mayRepeat?: number;
  /** The bound that does not move on resume (`to` for order old, `from` for order new). */
  from?: string;
  to?: string;
}

export interface PageCursor {
  kind: "page";
  package?: string;
  href: string;
  skip: number;
}

/** The datetime a dataset is ordered by: `properties.datetime`, else `start_datetime`. */
export function itemDatetime(item: Record<string, unknown>): string | undefined {
  const props = item.properties as Record<string, unknown> | undefined;
  const value = props?.datetime ?? props?.start_datetime;
  return typeof value === "string" ? value : undefined;
}

export function collectionItemKey(item: Record<string, unknown>): string {
  return `${String(item.collection ?? "")}/${String(item.id ?? "")}`;
}

/** Follows the delivered Items of a stream and produces its resume cursor, in bounded memory. */
export class StreamPosition {
  private datetime?: string;
  private ties: TieSet;

  constructor(
    private readonly base: { package: string; order: DatasetOrder; from?: string; to?: string },
    start?: StreamCursor,
    private readonly limits: TieLimits = DEFAULT_TIE_LIMITS,
  ) {
    this.ties = new TieSet(limits);
    if (start) {
      this.datetime = start.datetime;
      this.ties = TieSet.restore(start, limits);
    }
  }

  delivered(item: Record<string, unknown>): void {
    const datetime = itemDatetime(item);
    if (datetime === undefined) return;
    if (datetime !== this.datetime) {
      this.datetime = datetime;
      this.ties = new TieSet(this.limits);
    }
    this.ties.add(collectionItemKey(item));
  }

  cursor(): StreamCursor | undefined {
    if (this.datetime === undefined) return undefined;
    const { package: pkg, order, from, to } = this.base;
    const cursor: StreamCursor = { kind: "stream", package: pkg, order, datetime: this.datetime, ...this.ties.save() };
    if (order === "old" && to !== undefined) cursor.to = to;
    if (order === "new" && from !== undefined) cursor.from = from;
    return cursor;
  }
}

/** Refuses a stream cursor that is not one this package wrote (BAD_REQUEST, nothing sent). */
export function checkStreamCursor(cursor: StreamCursor): void {
  if (typeof cursor.datetime !== "string" || !Array.isArray(cursor.skipIds) || typeof cursor.package !== "string") {
    throw new DatasphereError("BAD_REQUEST", "msg.resume: stream cursor needs package, datetime and skipIds");
  }
  if (cursor.skipHashes !== undefined && (typeof cursor.skipHashes !== "string" || Buffer.from(cursor.skipHashes, "base64").length % 8 !== 0)) {
    throw new DatasphereError("BAD_REQUEST", "msg.resume: skipHashes is not base64 of 8-byte hashes");
  }
  if (cursor.mayRepeat !== undefined && !(Number.isInteger(cursor.mayRepeat) && cursor.mayRepeat >= 0)) {
    throw new DatasphereError("BAD_REQUEST", "msg.resume: mayRepeat must be a count");
  }
}

/** The query that continues a stream from a cursor. */
export function resumeQuery(cursor: StreamCursor): { order: DatasetOrder; from?: string; to?: string } {
  return cursor.order === "old" ? { order: "old", from: cursor.datetime, to: cursor.to } : { order: "new", from: cursor.from, to: cursor.datetime };
}

/**
 * Drops the Items a resumed stream sends again: those at the cursor's datetime whose keys (or key
 * hashes) were delivered. Ties may come back in any order, so it checks until the datetime changes.
 * Ties the cursor could not record (`mayRepeat`) pass: the receiver de-duplicates them by id.
 */
export class ResumeFilter {
  private active: boolean;
  private readonly lookup?: TieLookup;

  constructor(private readonly cursor?: StreamCursor) {
    this.lookup = cursor ? new TieLookup(cursor) : undefined;
    this.active = !!this.lookup && !this.lookup.empty;
  }

  keep(item: Record<string, unknown>): boolean {
    if (!this.active) return true;
    if (itemDatetime(item) !== this.cursor!.datetime) {
      this.active = false;
      return true;
    }
    return !this.lookup!.has(collectionItemKey(item));
  }

  get done(): boolean {
    return !this.active;
  }
}

/**
 * Where reading resumes once the Item at `indexInPage` of a page of `pageLength` Items was delivered:
 * after its last Item, the next page from its start; otherwise this page, past that Item.
 */
export function resumeAfter<P>(page: P, next: P | undefined, indexInPage: number, pageLength: number): { page: P | undefined; skip: number } {
  return indexInPage + 1 >= pageLength ? { page: next, skip: 0 } : { page, skip: indexInPage + 1 };
}

/** Follows the delivered Items of a paged pull. */
export class PagePosition {
  private href?: string;
  private skip = 0;

  constructor(private readonly pkg: string | undefined, start: { href: string; skip: number }) {
    this.href = start.href;
    this.skip = start.skip;
  }

  /** An Item at `indexInPage` of the page at `href` (whose next link is `next`) was delivered. */
  delivered(page: { href: string; next?: string }, indexInPage: number, pageLength: number): void {
    ({ page: this.href, skip: this.skip } = resumeAfter(page.href, page.next, indexInPage, pageLength));
  }

  complete(): void {
    this.href = undefined;
  }

  cursor(): PageCursor | undefined {
    return this.href === undefined ? undefined : { kind: "page", package: this.pkg, href: this.href, skip: this.skip };
  }
}
