/** What the dataset readers yield. Items come in batches (one per network chunk or page). */
export type DatasetEvent = ItemsEvent | MalformedEvent;

export interface ItemsEvent {
  kind: "items";
  items: Record<string, unknown>[];
  /**
   * Page reader only: the page these Items came from, its next link (undefined = last page), how many
   * of its Items were left out before these (resume) and how many it holds in all.
   */
  page?: { href: string; next?: string; index: number; offset: number; length: number };
}

/** A stream line that is not a JSON object: reported, then the reader goes on. */
export interface MalformedEvent {
  kind: "malformed";
  lineNumber: number;
  /** The first 200 characters of the line. */
  preview: string;
  reason: string;
}
