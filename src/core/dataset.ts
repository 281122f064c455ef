import type { DatasetOrder, Endpoints } from "./endpoints";
import { DatasphereError } from "./errors";
import { PagePosition, ResumeFilter, StreamPosition, checkStreamCursor, resumeQuery, type ResumeCursor } from "./dataset/cursor";
import { normalizeDateParam } from "./dataset/dates";
import type { DatasetEvent, ItemsEvent } from "./dataset/events";
import type { ReaderOptions } from "./dataset/http";
import { readItem } from "./dataset/item-reader";
import { parseLibraryUrl, type PullMode } from "./dataset/library-url";
import { readPages } from "./dataset/page-reader";
import { readStream } from "./dataset/stream-reader";

export type { DatasetEvent, ItemsEvent, MalformedEvent } from "./dataset/events";
export type { ReaderOptions } from "./dataset/http";
export type { PullMode } from "./dataset/library-url";
export type { ResumeCursor, StreamCursor, PageCursor } from "./dataset/cursor";
export { FlowWindow, DeliveryTracker } from "./dataset/flow-window";
export { normalizeDateParam } from "./dataset/dates";
export { parseLibraryUrl } from "./dataset/library-url";
export { readStream, readPages, readItem };

/** What to pull, as the node resolved it from its properties and the input message. */
export interface PullSpec {
  mode: PullMode;
  package?: string;
  order?: DatasetOrder;
  from?: unknown;
  to?: unknown;
  /** A full Data Library URL: used as-is instead of package and options. */
  url?: string;
  /** A cursor from an earlier pull's completion message: continue exactly after it. */
  resume?: ResumeCursor;
}

/** A pull ready to run: the first URL, and what follows delivery to produce the resume cursor. */
export interface PullPlan {
  mode: PullMode;
  package: string;
  url: string;
  skipFirst: number;
  filter: ResumeFilter;
  tracker: PullTracker;
}

type ApiEndpoints = Pick<Endpoints, "apiBase" | "apiOrigin" | "isApiOrigin" | "dataset" | "item">;

/** Resolves a spec into a plan. Throws BAD_REQUEST (nothing sent) for a bad package, date, URL or cursor. */
export function planPull(spec: PullSpec, endpoints: ApiEndpoints): PullPlan {
  if (spec.resume) return planResume(spec.resume, endpoints);
  if (spec.url) {
    const library = parseLibraryUrl(spec.url, endpoints);
    const query = new URL(library.url).searchParams;
    const order: DatasetOrder = query.get("order") === "old" ? "old" : "new";
    const base = { package: library.package, order, from: query.get("from") ?? undefined, to: query.get("to") ?? undefined };
    return makePlan(library.mode, library.package, library.url, base);
  }
  const pkg = typeof spec.package === "string" ? spec.package.trim() : "";
  if (pkg === "") throw new DatasphereError("BAD_REQUEST", "no package: set the node's package or msg.package");
  if (spec.mode === "item") return makePlan("item", pkg, endpoints.item(pkg), { package: pkg, order: "new" });
  const order = checkOrder(spec.order);
  const from = normalizeDateParam(spec.from, "from");
  const to = normalizeDateParam(spec.to, "to");
  const url = endpoints.dataset(pkg, spec.mode, { order, from, to });
  return makePlan(spec.mode, pkg, url, { package: pkg, order, from, to });
}

function planResume(cursor: ResumeCursor, endpoints: ApiEndpoints): PullPlan {
  if (!cursor || typeof cursor !== "object") throw new DatasphereError("BAD_REQUEST", "msg.resume is not a cursor object");
  if (cursor.kind === "page") {
    if (typeof cursor.href !== "string") throw new DatasphereError("BAD_REQUEST", "msg.resume: page cursor without href");
    if (!endpoints.isApiOrigin(cursor.href)) throw new DatasphereError("BAD_REQUEST", "msg.resume refused: its href is not on the configured API origin; no request was sent");
    const pkg = cursor.package ?? "";
    const skip = Number.isInteger(cursor.skip) && cursor.skip > 0 ? cursor.skip : 0;
    return { mode: "paginate", package: pkg, url: cursor.href, skipFirst: skip, filter: new ResumeFilter(), tracker: new PullTracker(undefined, new PagePosition(pkg, { href: cursor.href, skip })) };
  }
  if (cursor.kind === "stream") {
    checkStreamCursor(cursor);
    const order = checkOrder(cursor.order);
    const query = resumeQuery({ ...cursor, order });
    const url = endpoints.dataset(cursor.package, "stream", query);
    const base = { package: cursor.package, order, from: cursor.from, to: cursor.to };
    return { mode: "stream", package: cursor.package, url, skipFirst: 0, filter: new ResumeFilter(cursor), tracker: new PullTracker(new StreamPosition(base, cursor)) };
  }
  throw new DatasphereError("BAD_REQUEST", `msg.resume: unknown cursor kind`);
}

function makePlan(mode: PullMode, pkg: string, url: string, base: { package: string; order: DatasetOrder; from?: string; to?: string }): PullPlan {
  const tracker = mode === "stream" ? new PullTracker(new StreamPosition(base)) : mode === "paginate" ? new PullTracker(undefined, new PagePosition(pkg, { href: url, skip: 0 })) : new PullTracker();
  return { mode, package: pkg, url, skipFirst: 0, filter: new ResumeFilter(), tracker };
}

function checkOrder(order: unknown): DatasetOrder {
  if (order === undefined || order === null || order === "") return "new";
  if (order === "new" || order === "old") return order;
  throw new DatasphereError("BAD_REQUEST", `order must be "new" or "old"`);
}

/** Follows delivered Items (in delivery order) and answers the resume cursor at any moment. */
export class PullTracker {
  constructor(private readonly stream?: StreamPosition, private readonly pages?: PagePosition) {}

  /** The Item at `index` of this batch was delivered. */
  delivered(batch: ItemsEvent, index: number): void {
    if (this.stream) this.stream.delivered(batch.items[index]);
    else if (this.pages && batch.page) this.pages.delivered(batch.page, batch.page.offset + index, batch.page.length);
  }

  /** The reader ended normally: a paged pull has nothing left to resume (a stream keeps its last datetime). */
  complete(): void {
    this.pages?.complete();
  }

  cursor(): ResumeCursor | undefined {
    return this.stream?.cursor() ?? this.pages?.cursor();
  }
}

/** Runs the reader of the plan: batches of Items (resume duplicates removed) and malformed-line reports. */
export async function* readDataset(plan: PullPlan, options: ReaderOptions): AsyncGenerator<DatasetEvent, void, undefined> {
  const source =
    plan.mode === "stream" ? readStream(plan.url, options) : plan.mode === "paginate" ? readPages(plan.url, { ...options, skipFirst: plan.skipFirst }) : readItem(plan.url, options);
  for await (const event of source) {
    if (event.kind === "items" && !plan.filter.done) {
      const kept = event.items.filter((item) => plan.filter.keep(item));
      if (kept.length > 0) yield { ...event, items: kept };
      continue;
    }
    yield event;
  }
}
