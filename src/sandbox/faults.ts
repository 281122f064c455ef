/**
 * Fault injection for tests. Faults are set per endpoint kind ("scope") or for all of them, and
 * stay until cleared, except `failNext` (counts down) and anything limited by `times`.
 */
export type FaultScope = "subscription" | "dataset" | "item" | "asset" | "publish" | "stac-search";
export const FAULT_SCOPES: ReadonlyArray<FaultScope> = ["subscription", "dataset", "item", "asset", "publish", "stac-search"];

export interface FailNext {
  /** How many of the next requests fail. */
  count: number;
  /** HTTP status to answer with (e.g. 500, 502, 503, 429). */
  status: number;
  /** `Retry-After` header value: seconds (number) or an HTTP date (string). Omitted when undefined. */
  retryAfter?: number | string;
}

export interface FaultSpec {
  /** Destroy the connection after N events (subscription), Items (dataset stream/paginate), or publish messages received. */
  dropAfterEvents?: number;
  /** Destroy the connection after N body bytes (may cut an event, a line or an asset body in the middle). A function is called once per connection. */
  dropAfterBytes?: number | ((connection: number) => number);
  /** Accept the connection and send nothing at all (no status line, no heartbeat). */
  stall?: boolean;
  /** Send N events/Items normally, then keep the socket open and send nothing more (no keep-alives). */
  stallAfterEvents?: number;
  /** Insert a malformed event (subscription) or line (dataset stream) before every Nth Item. Real Items are not lost. */
  malformedEvery?: number;
  /** Answer the next `count` requests with `status` (and `Retry-After`). For publish, the upgrade is refused. */
  failNext?: FailNext;
  /** Assets: answer 200 with the whole body even when a Range is asked. */
  ignoreRange?: boolean;
  /** Assets: serve bytes that do not match the Item's `file:checksum` (same size, one byte changed). */
  wrongChecksum?: boolean;
  /** Assets: answer 302 to the same path on this origin (e.g. "http://127.0.0.1:9999"). */
  redirectAssetsTo?: string;
  /** Subscription: do not replay missed events on `Last-Event-ID`. */
  ignoreLastEventId?: boolean;
  /** Publish: after the handshake, send no heartbeat. */
  silent?: boolean;
  /** Split every body write into pieces of this many bytes (multi-byte characters and lines end up across chunks). */
  chunkBytes?: number;
  /** Dataset stream: frame each Item as an SSE `data:` line plus a blank line instead of NDJSON (with `: comment` lines between). */
  sseFraming?: boolean;
  /** Apply the connection faults (drop*, stall*, malformedEvery) to the next N connections only. */
  times?: number;
}

/** What one connection gets: resolved once when it opens. */
export interface ConnectionFaults {
  dropAfterEvents?: number;
  dropAfterBytes?: number;
  stall: boolean;
  stallAfterEvents?: number;
  malformedEvery?: number;
  ignoreRange: boolean;
  wrongChecksum: boolean;
  redirectAssetsTo?: string;
  ignoreLastEventId: boolean;
  silent: boolean;
  chunkBytes?: number;
  sseFraming: boolean;
}

export class Faults {
  readonly #specs = new Map<FaultScope, FaultSpec>();
  #connections = 0;
  /** Count of faults actually injected (failures answered, connections dropped/stalled...). */
  injected = 0;

  /** Sets (replaces) the faults of one scope, or of every scope when scope is omitted or "all". */
  set(spec: FaultSpec, scope: FaultScope | "all" = "all"): void {
    for (const s of scope === "all" ? FAULT_SCOPES : [scope]) {
      this.#specs.set(s, { ...spec, failNext: spec.failNext ? { ...spec.failNext } : undefined });
    }
  }

  /** Adds to the faults of a scope (or every scope) without removing the others. */
  update(spec: FaultSpec, scope: FaultScope | "all" = "all"): void {
    for (const s of scope === "all" ? FAULT_SCOPES : [scope]) {
      const merged = { ...this.#specs.get(s), ...spec };
      if (spec.failNext) merged.failNext = { ...spec.failNext };
      this.#specs.set(s, merged);
    }
  }

  clear(scope: FaultScope | "all" = "all"): void {
    if (scope === "all") this.#specs.clear();
    else this.#specs.delete(scope);
  }

  get(scope: FaultScope): Readonly<FaultSpec> {
    return this.#specs.get(scope) ?? {};
  }

  /** Takes one failure from `failNext` of the scope, if any is left. */
  takeFailure(scope: FaultScope): FailNext | undefined {
    const spec = this.#specs.get(scope);
    const fail = spec?.failNext;
    if (!spec || !fail || fail.count <= 0) return undefined;
    fail.count -= 1;
    if (fail.count <= 0) spec.failNext = undefined;
    this.injected++;
    return fail;
  }

  /** Resolves the faults for a new connection of the scope (consumes one of `times`). */
  forConnection(scope: FaultScope): ConnectionFaults {
    const spec = this.#specs.get(scope) ?? {};
    const connection = ++this.#connections;
    let active = spec.times === undefined || spec.times > 0;
    if (spec.times !== undefined && spec.times > 0) spec.times -= 1;
    const hasConnectionFault =
      spec.dropAfterEvents !== undefined || spec.dropAfterBytes !== undefined || spec.stall || spec.stallAfterEvents !== undefined || spec.malformedEvery !== undefined;
    if (!hasConnectionFault) active = false;
    const drop = active ? spec.dropAfterBytes : undefined;
    return {
      dropAfterEvents: active ? spec.dropAfterEvents : undefined,
      dropAfterBytes: typeof drop === "function" ? drop(connection) : drop,
      stall: active ? spec.stall === true : false,
      stallAfterEvents: active ? spec.stallAfterEvents : undefined,
      malformedEvery: active ? spec.malformedEvery : undefined,
      ignoreRange: spec.ignoreRange === true,
      wrongChecksum: spec.wrongChecksum === true,
      redirectAssetsTo: spec.redirectAssetsTo,
      ignoreLastEventId: spec.ignoreLastEventId === true,
      silent: spec.silent === true,
      chunkBytes: spec.chunkBytes,
      sseFraming: spec.sseFraming === true,
    };
  }
}
