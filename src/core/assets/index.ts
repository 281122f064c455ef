import { setMaxListeners } from "node:events";
import { DatasphereError, toDatasphereError } from "../errors";
import { anySignal } from "../abort";
import { planItemAsync, assetError, type Plan, type PlanEntry, type PlanOptions } from "./planner";
import { TransferPool } from "./pool";
import { transferAsset, type ChecksumState, type TransferOptions, type TransferResult } from "./transfer";

export { planItem, planItemAsync, checkLayout, DEFAULT_LAYOUT, type Plan, type PlanEntry, type PlanError, type PlanOptions, type SelectBy, type NamingMode } from "./planner";
export { TransferPool } from "./pool";
export { defaultSelection, type SelectionRule } from "./selection";
export { transferAsset, DEFAULT_MAX_BYTES_WITHOUT_SIZE, DEFAULT_MAX_RETRY_AFTER_MS, type ExistingPolicy, type ChecksumState, type TransferOptions, type TransferResult } from "./transfer";
export { parseMultihash, toMultihash } from "./multihash";
export { displayHref } from "./naming";
export { containedPath, sanitizeSegment, unsafeReason } from "./paths";

export interface FileRecord {
  key: string;
  path: string;
  bytes: number;
  checksum: ChecksumState;
  /** True when a valid file was already there (existing-file policy "skip-if-valid"). */
  skipped: boolean;
}

export type AssetEvent =
  | { event: "start"; itemId: string; key: string; href: string; path: string; size?: number }
  | { event: "finish"; itemId: string; key: string; path: string; bytes: number; checksum: ChecksumState; skipped: boolean; resumes: number; restarts: number }
  /** `started`: the asset had a `start` event (its transfer ended in this error). */
  | { event: "error"; itemId: string; key: string; code: string; message: string; started: boolean }
  /** A started transfer stopped because another asset failed (fail-fast). */
  | { event: "stopped"; itemId: string; key: string };

export interface FetchOptions extends PlanOptions, Omit<TransferOptions, "signal"> {
  pool: TransferPool;
  signal?: AbortSignal;
  /** Stop this Item's other transfers at the first error (default: keep going). */
  failFast?: boolean;
  onEvent?(event: AssetEvent): void;
  /** Files being written right now by any fetch sharing this set: a second writer is a collision. */
  activePaths?: Set<string>;
}

export interface FetchOutcome {
  /** A copy of the Item whose downloaded assets' href point to the local files (original kept as alternate "original"). */
  item: Record<string, unknown>;
  files: FileRecord[];
  errors: DatasphereError[];
  plan: Plan;
}

/** Plans an Item's downloads, then runs them through the pool; one outcome per Item. */
export async function fetchItemAssets(item: unknown, options: FetchOptions): Promise<FetchOutcome> {
  const plan = await planItemAsync(item, options);
  const errors: DatasphereError[] = plan.errors.map((e) => e.error);
  for (const e of errors) options.onEvent?.({ event: "error", itemId: plan.itemId, key: String(e.details?.key ?? ""), code: e.code, message: e.message, started: false });
  const results: TransferResult[] = [];
  if (!(options.failFast && errors.length > 0)) {
    const local = new AbortController();
    setMaxListeners(0, local.signal);
    const signal = anySignal([options.signal, local.signal]);
    setMaxListeners(0, signal);
    await Promise.all(
      plan.entries.map(async (entry) => {
        const progress = { started: false };
        try {
          results.push(await runOne(entry, options, signal, progress));
        } catch (error) {
          const err = toDatasphereError(error, "download");
          if (err.code === "ABORTED" && local.signal.aborted && !options.signal?.aborted) {
            if (progress.started) options.onEvent?.({ event: "stopped", itemId: entry.itemId, key: entry.key });
            return;
          }
          errors.push(err);
          options.onEvent?.({ event: "error", itemId: entry.itemId, key: entry.key, code: err.code, message: err.message, started: progress.started });
          if (options.failFast) local.abort();
        }
      }),
    );
  }
  const order = new Map(plan.entries.map((e, i) => [e.key, i]));
  results.sort((a, b) => (order.get(a.key) ?? 0) - (order.get(b.key) ?? 0));
  const files = results.map(({ key, path, bytes, checksum, skipped }) => ({ key, path, bytes, checksum, skipped }));
  return { item: rewriteItem(item as Record<string, unknown>, plan.entries, files), files, errors, plan };
}

async function runOne(entry: PlanEntry, options: FetchOptions, signal: AbortSignal, progress: { started: boolean }): Promise<TransferResult> {
  const release = await options.pool.acquire(hostOf(entry.href), signal);
  const active = options.activePaths;
  try {
    if (active?.has(entry.path)) {
      throw assetError("COLLISION", entry.itemId, entry.key, entry.originalHref, `another download is writing ${entry.path} right now`);
    }
    active?.add(entry.path);
    try {
      options.onEvent?.({ event: "start", itemId: entry.itemId, key: entry.key, href: entry.href, path: entry.path, size: entry.size });
      progress.started = true;
      const result = await transferAsset(entry, { ...options, signal });
      options.onEvent?.({ event: "finish", itemId: entry.itemId, key: entry.key, path: result.path, bytes: result.bytes, checksum: result.checksum, skipped: result.skipped, resumes: result.resumes, restarts: result.restarts });
      return result;
    } finally {
      active?.delete(entry.path);
    }
  } finally {
    release();
  }
}

/** A copy of the Item whose downloaded assets point to the local files; only the changed assets are deep-copied (an Item may hold thousands). */
function rewriteItem(item: Record<string, unknown>, entries: PlanEntry[], files: FileRecord[]): Record<string, unknown> {
  const assets: Record<string, Record<string, unknown>> = { ...(item.assets as Record<string, Record<string, unknown>>) };
  const copy: Record<string, unknown> = { ...item, assets };
  const byKey = new Map(entries.map((e) => [e.key, e]));
  for (const file of files) {
    const entry = byKey.get(file.key);
    if (!entry || !assets[file.key]) continue;
    const asset = structuredClone(assets[file.key]);
    const alternate = asset.alternate && typeof asset.alternate === "object" ? { ...(asset.alternate as Record<string, unknown>) } : {};
    let name = "original";
    for (let n = 2; name in alternate; n += 1) name = `original-${n}`;
    alternate[name] = { href: entry.originalHref, "alternate:name": "original" };
    asset.alternate = alternate;
    asset.href = file.path;
    assets[file.key] = asset;
  }
  return copy;
}

function hostOf(href: string): string {
  try {
    return new URL(href).host;
  } catch {
    return "";
  }
}
