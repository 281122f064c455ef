import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { rename, unlink, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { pipeline } from "node:stream/promises";
import type { Dispatcher } from "undici";
import { abortError } from "../abort";
import type { RequestAuth } from "../auth";
import { Backoff, parseRetryAfter } from "../backoff";
import { clampDelay, systemClock, type Clock } from "../clock";
import { DatasphereError, IO_ERRNOS, errorForStatus, isDatasphereError, isRetryable, toDatasphereError } from "../errors";
import { HashingFileSink } from "./file-sink";
import { createStreamHash, type StreamHash } from "./stream-hash";
import { getFollowingRedirects, headerValue } from "./http";
import type { PlanEntry } from "./planner";
import { assetError } from "./planner";
import { checkInside, checkNotLink, ensureFolderBelow, lstatOrUndefined, openNoFollow } from "./safe-fs";

export type ExistingPolicy = "skip-if-valid" | "overwrite" | "fail";
export type ChecksumState = "verified" | "unverified" | "absent";

export interface TransferOptions {
  /** Credentials, decided again for every URL and redirect hop. */
  auth: RequestAuth;
  signal?: AbortSignal;
  /** Longest silence (response head, or between body chunks) before the attempt counts as failed. */
  idleTimeoutMs?: number;
  /** Failed attempts in a row that received no body byte, before giving up. */
  retries?: number;
  /** Attempts in all, however much each received (a server that cuts every response and ignores Range). */
  maxAttempts?: number;
  backoff?: { initialMs: number; maxMs: number };
  existing?: ExistingPolicy;
  /** fsync the .part before the rename (default off: skip-if-valid re-verifies size and checksum anyway). */
  fsync?: boolean;
  /** Files at least this large (or of unknown size) are hashed on a worker thread reading the file back; default 16 MiB, Infinity = never. */
  readbackHashThreshold?: number;
  /** Largest download of an asset without `file:size` (default 4 GiB); more is a SIZE error. */
  maxBytesWithoutSize?: number;
  /** Longest wait a server's Retry-After may ask for (default 1 h); longer asks wait this long. */
  maxRetryAfterMs?: number;
  /** Timers of the retry waits (tests pass a FakeClock). */
  clock?: Clock;
  onBytes?(n: number): void;
  dispatcher?: Dispatcher;
}

export const DEFAULT_MAX_BYTES_WITHOUT_SIZE = 4 * 1024 ** 3;
export const DEFAULT_MAX_RETRY_AFTER_MS = 3_600_000;

export interface TransferResult {
  key: string;
  path: string;
  bytes: number;
  checksum: ChecksumState;
  skipped: boolean;
  /** Attempts that continued a .part with Range. */
  resumes: number;
  /** Attempts that had to start again from byte 0 (server ignored Range, or the entity changed). */
  restarts: number;
  attempts: number;
}

const DEFAULTS = {
  idleTimeoutMs: 30_000,
  retries: 5,
  maxAttempts: 100,
  backoff: { initialMs: 1000, maxMs: 30_000 },
  existing: "skip-if-valid" as ExistingPolicy,
  fsync: false,
  maxBytesWithoutSize: DEFAULT_MAX_BYTES_WITHOUT_SIZE,
  maxRetryAfterMs: DEFAULT_MAX_RETRY_AFTER_MS,
  clock: systemClock,
};

/**
 * Downloads one planned asset: streams to `<path>.part` while hashing, resumes with Range (If-Range
 * on the validator) after a cut, restarts when the server ignores Range, verifies file:size and
 * file:checksum, and renames to the final name only when complete and verified.
 */
export async function transferAsset(entry: PlanEntry, options: TransferOptions): Promise<TransferResult> {
  const opts = { ...DEFAULTS, ...options };
  const named = new WeakSet<Error>(); // errors that already name the Item and asset
  const fail = (code: DatasphereError["code"], why: string, extra: { cause?: unknown; status?: number } = {}) => {
    const error = assetError(code, entry.itemId, entry.key, entry.originalHref, why, extra.cause);
    named.add(error);
    return extra.status !== undefined ? Object.assign(error, { status: extra.status }) : error;
  };
  const checksumState: ChecksumState = entry.checksum ? (entry.checksum.kind === "supported" ? "verified" : "unverified") : "absent";
  const verifiable = entry.checksum?.kind === "supported";

  try {
    await ensureFolderBelow(entry.root, entry.path);
  } catch (error) {
    const err = toDatasphereError(error, "download");
    if (err.code === "UNSAFE_PATH") throw fail("UNSAFE_PATH", err.message);
    throw fail("IO", `cannot create folder ${dirname(entry.path)}: ${isDatasphereError(error) ? error.message : ioReason(error)}`, { cause: error });
  }

  const existing = await lstatOrUndefined(entry.path);
  if (existing) {
    if (existing.isSymbolicLink()) throw fail("UNSAFE_PATH", `${entry.path} is a symbolic link; remove it (asset-fetch never reads or writes through a link)`);
    if (!existing.isFile()) throw fail("IO", `${entry.path} exists and is not a regular file`);
    if (opts.existing === "fail") throw fail("EXISTS", `file ${entry.path} already exists`);
    if (opts.existing === "skip-if-valid" && (await existingIsValid(entry, existing.size, opts.signal))) {
      return { key: entry.key, path: entry.path, bytes: existing.size, checksum: checksumState, skipped: true, resumes: 0, restarts: 0, attempts: 0 };
    }
  }

  const partPath = `${entry.path}.part`;
  const earlier = await lstatOrUndefined(partPath);
  // A .part from an earlier run is only trusted when the checksum can prove the result.
  const resumeEarlier = !!earlier && earlier.isFile() && earlier.size > 0 && verifiable;
  let handle: FileHandle;
  try {
    handle = await openNoFollow(partPath, resumeEarlier ? "resume" : "create");
  } catch (error) {
    const err = toDatasphereError(error, "download");
    if (err.code === "UNSAFE_PATH") throw fail("UNSAFE_PATH", err.message);
    throw fail("IO", `cannot write ${partPath}: ${ioReason(error)}`, { cause: error });
  }

  const state = {
    written: resumeEarlier ? earlier!.size : 0,
    hash: undefined as StreamHash | undefined,
    hashValid: !resumeEarlier,
    validator: undefined as string | undefined,
    hashThreshold: opts.readbackHashThreshold,
    rangeSupported: false,
    expectedTotal: undefined as number | undefined,
    resumedEarlier: resumeEarlier,
    resumes: 0,
    restarts: 0,
    attempts: 0,
  };
  let keepPart = false;
  try {
    state.hash = await newHash(entry, partPath, state.hashThreshold);
    if (state.hash?.followsFile) state.hashValid = true;
    for (let pass = 0; ; pass += 1) {
      await download(entry, opts, handle, state, fail);
      if (entry.size !== undefined && state.written !== entry.size) {
        throw fail("SIZE", `got ${state.written} bytes, file:size says ${entry.size}`);
      }
      if (entry.checksum?.kind !== "supported") break;
      if (!state.hashValid) await rehashPrefix(partPath, state, entry, opts.signal);
      const digest = await state.hash!.digest(state.written);
      if (digest === entry.checksum.digestHex) break;
      if (state.resumedEarlier && pass === 0) {
        // The .part of an earlier run may hold another version of the file: one fresh try.
        state.resumedEarlier = false;
        await restart(handle, state, entry);
        continue;
      }
      throw fail("CHECKSUM", `checksum mismatch (${entry.checksum.algorithm}: expected ${entry.checksum.digestHex}, got ${digest})`);
    }
    await state.hash?.dispose();
    if (opts.fsync) await handle.sync();
    await handle.close();
    // The folders may have changed while the bytes came: check again, just before the name appears.
    await checkInside(entry.root, dirname(entry.path));
    await checkNotLink(entry.path);
    await rename(partPath, entry.path);
    return { key: entry.key, path: entry.path, bytes: state.written, checksum: checksumState, skipped: false, resumes: state.resumes, restarts: state.restarts, attempts: state.attempts };
  } catch (error) {
    const err = toDatasphereError(error, "download");
    keepPart = state.rangeSupported && verifiable && state.written > 0 && (err.code === "ABORTED" || err.code === "NETWORK" || err.code === "TIMEOUT" || err.code === "SERVER" || err.code === "RATE_LIMITED");
    throw named.has(err) ? err : fail(err.code, err.message, { cause: error, status: err.status });
  } finally {
    await state.hash?.dispose();
    if (keepPart) await handle.truncate(state.written).catch(() => undefined);
    await handle.close().catch(() => undefined);
    if (!keepPart) await unlink(partPath).catch(() => undefined);
  }
}

interface State {
  hashThreshold?: number;
  written: number;
  hash?: StreamHash;
  hashValid: boolean;
  validator?: string;
  rangeSupported: boolean;
  /** The whole entity's length, as the first response told it (Content-Length of a 200, total of a Content-Range). */
  expectedTotal?: number;
  resumedEarlier: boolean;
  resumes: number;
  restarts: number;
  attempts: number;
}

type Fail = (code: DatasphereError["code"], why: string, extra?: { cause?: unknown; status?: number }) => DatasphereError;

async function download(entry: PlanEntry, opts: typeof DEFAULTS & TransferOptions, handle: FileHandle, state: State, fail: Fail): Promise<void> {
  const backoff = new Backoff({ initialMs: opts.backoff.initialMs, maxMs: opts.backoff.maxMs });
  let failuresInARow = 0;
  for (;;) {
    state.attempts += 1;
    let received = 0;
    let sink: HashingFileSink | undefined;
    try {
      // Identity only: a content-coded body would put encoded bytes under the asset's name.
      const headers: Record<string, string> = { "accept-encoding": "identity" };
      if (state.written > 0) {
        headers.range = `bytes=${state.written}-`;
        if (state.validator) headers["if-range"] = state.validator;
      }
      const { response, url } = await getFollowingRedirects(entry.href, {
        auth: opts.auth,
        headers,
        signal: opts.signal,
        idleTimeoutMs: clampDelay(opts.idleTimeoutMs),
        dispatcher: opts.dispatcher,
      });
      const status = response.statusCode;
      let limit = entry.size ?? opts.maxBytesWithoutSize;
      if (headerValue(response.headers, "accept-ranges")?.toLowerCase() === "bytes") state.rangeSupported = true;
      let total: number | undefined;
      if (status === 206) {
        const range = parseContentRange(headerValue(response.headers, "content-range"));
        if (!range || range.start !== state.written || (state.expectedTotal !== undefined && range.total !== undefined && range.total !== state.expectedTotal)) {
          await response.body.dump().catch(() => undefined);
          await restart(handle, state, entry);
          throw new DatasphereError("PROTOCOL", "server answered a Range request with the wrong part");
        }
        state.rangeSupported = true;
        total = range.total;
        limit = Math.min(limit, range.end + 1);
        if (!state.hashValid) await rehashPrefix(`${entry.path}.part`, state, entry, opts.signal);
        if (state.written > 0) state.resumes += 1;
      } else if (status === 200) {
        if (state.written > 0) await restart(handle, state, entry);
        const length = Number(headerValue(response.headers, "content-length") ?? "x");
        total = Number.isSafeInteger(length) ? length : undefined;
      } else if (status === 416 && state.written > 0) {
        await response.body.dump().catch(() => undefined);
        const range = /^bytes \*\/(\d+)$/.exec(headerValue(response.headers, "content-range") ?? "");
        const claimed = range ? Number(range[1]) : undefined;
        // "You have it all" only counts when it agrees with what the first response announced.
        if (claimed === state.written && (state.expectedTotal === undefined || state.expectedTotal === claimed)) return;
        await restart(handle, state, entry);
        throw new DatasphereError("PROTOCOL", `server refused the Range of the partial file (HTTP 416${claimed !== undefined ? `, says the file has ${claimed} bytes` : ""})`);
      } else {
        await response.body.dump().catch(() => undefined);
        throw refusal(status, response.headers, url, opts, fail);
      }
      if (total !== undefined) state.expectedTotal ??= total;
      const encoding = headerValue(response.headers, "content-encoding")?.trim().toLowerCase();
      if (encoding && encoding !== "identity" && entry.checksum?.kind !== "supported") {
        await response.body.dump().catch(() => undefined);
        throw fail("UNSUPPORTED", `server sent a "${encoding}"-encoded body although only identity was accepted; without a file:checksum nothing proves these are the asset's bytes`);
      }
      if (total !== undefined && entry.size !== undefined && total !== entry.size) {
        await response.body.dump().catch(() => undefined);
        throw fail("SIZE", `server sends ${total} bytes, file:size says ${entry.size}`);
      }
      if (total !== undefined && entry.size === undefined && total > opts.maxBytesWithoutSize) {
        await response.body.dump().catch(() => undefined);
        throw fail("SIZE", sizeCapMessage(opts.maxBytesWithoutSize, `the server announces ${total} bytes`));
      }
      const etag = headerValue(response.headers, "etag");
      const lastModified = headerValue(response.headers, "last-modified");
      if (status === 200 || !state.validator) state.validator = etag && !etag.startsWith("W/") ? etag : lastModified;

      const overLimit = () =>
        limit < (entry.size ?? opts.maxBytesWithoutSize)
          ? new DatasphereError("SIZE", `server sent more bytes than its Content-Range (${limit - state.written} from byte ${state.written}) announces`)
          : entry.size !== undefined
            ? new DatasphereError("SIZE", `server sent more than the ${entry.size} bytes file:size announces`)
            : new DatasphereError("SIZE", sizeCapMessage(opts.maxBytesWithoutSize, "the server sent more"));
      sink = new HashingFileSink(handle.fd, state.written, state.hash, { bytes: limit, error: overLimit }, opts.onBytes);
      await pipeline(response.body, sink);
      state.written = sink.written;
      if (total !== undefined && state.written < total) throw new DatasphereError("NETWORK", `connection ended after ${state.written} of ${total} bytes`);
      return;
    } catch (error) {
      if (sink) {
        await sink.settled();
        received = sink.written - sink.start;
        state.written = sink.written;
        if (sink.hashed !== sink.written && !state.hash?.followsFile) state.hashValid = false;
      }
      const err = toDatasphereError(error, "download");
      if (opts.signal?.aborted) throw toDatasphereError(opts.signal.reason ?? error, "download");
      if (isIoError(error)) throw fail("IO", `cannot write ${entry.path}.part: ${ioReason(error)}`, { cause: error });
      if (err.code === "IO" || err.code === "SIZE" || err.code === "CHECKSUM" || err.code === "UNSUPPORTED") throw err;
      if (received > 0) {
        failuresInARow = 0;
        backoff.reset();
      }
      failuresInARow += 1;
      if (!isRetryable(err) || failuresInARow > opts.retries || state.attempts >= opts.maxAttempts) throw err;
      await sleepOn(opts.clock, backoff.next(Math.min(err.retryAfterMs ?? 0, opts.maxRetryAfterMs)), opts.signal);
    }
  }
}

async function restart(handle: FileHandle, state: State, entry: PlanEntry): Promise<void> {
  await state.hash?.dispose();
  state.hash = undefined;
  await handle.truncate(0);
  state.written = 0;
  state.hash = await newHash(entry, `${entry.path}.part`, state.hashThreshold);
  state.hashValid = true;
  state.validator = undefined;
  state.restarts += 1;
}

async function newHash(entry: PlanEntry, partPath: string, threshold: number | undefined, previous?: StreamHash): Promise<StreamHash | undefined> {
  await previous?.dispose();
  return entry.checksum?.kind === "supported" ? createStreamHash(entry.checksum.nodeAlgorithm, partPath, entry.size, threshold) : undefined;
}

/** Feeds the bytes already in the .part through a fresh inline hash (hash state cannot be persisted). */
async function rehashPrefix(partPath: string, state: State, entry: PlanEntry, signal?: AbortSignal): Promise<void> {
  const hash = await newHash(entry, partPath, state.hashThreshold, state.hash);
  if (hash && !hash.followsFile && state.written > 0) {
    await pipeline(createReadStream(partPath, { start: 0, end: state.written - 1, highWaterMark: 1 << 20 }), async function (source: AsyncIterable<Buffer>) {
      for await (const chunk of source) hash.update(chunk);
    }, { signal });
  }
  state.hash = hash;
  state.hashValid = true;
}

async function existingIsValid(entry: PlanEntry, size: number, signal?: AbortSignal): Promise<boolean> {
  if (entry.size !== undefined && size !== entry.size) return false;
  if (entry.checksum?.kind === "supported") {
    const hash = createHash(entry.checksum.nodeAlgorithm);
    await pipeline(createReadStream(entry.path, { highWaterMark: 1 << 20 }), async function (source: AsyncIterable<Buffer>) {
      for await (const chunk of source) hash.update(chunk);
    }, { signal });
    return hash.digest("hex") === entry.checksum.digestHex;
  }
  // Without a size or a checksum there is nothing to prove the file complete: download again.
  return entry.size !== undefined;
}

function parseContentRange(value: string | undefined): { start: number; end: number; total?: number } | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value?.trim() ?? "");
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === "*" ? undefined : Number(m[3]) };
}

/** A 401/403 from a host that got no token is not the token's fault: say what to look at instead. */
function refusal(status: number, headers: Record<string, string | string[] | undefined>, url: string, opts: TransferOptions, fail: Fail): DatasphereError {
  const retryAfter = parseRetryAfter(headerValue(headers, "retry-after"));
  if (status !== 401 && status !== 403) return errorForStatus(status, "download", retryAfter);
  const sent = Object.keys(opts.auth.headersFor(url)).some((h) => h.toLowerCase() === "authorization");
  if (sent) return fail("AUTH", `the Data Sphere token was refused (HTTP ${status}): check or renew the token in the configuration node`, { status });
  let host = url;
  try {
    host = new URL(url).host;
  } catch {
    // keep the whole URL
  }
  return fail(
    "FORBIDDEN",
    `${host} refused the download (HTTP ${status}); no Data Sphere token was sent there, so the token is not the cause: the URL may need signing (an expired SAS or pre-signed URL), requester-pays access, or credentials of that host`,
    { status },
  );
}

function sizeCapMessage(cap: number, what: string): string {
  return `the asset has no file:size and ${what} than the ${cap} bytes allowed for such assets; raise "Size cap (MiB)" on the node if this file is expected to be that large`;
}

/** Waits on the given clock (delay clamped to Node's timer range), or rejects with ABORTED. */
function sleepOn(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError());
    const onAbort = () => {
      clock.clearTimeout(timer);
      reject(abortError());
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, clampDelay(ms));
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function isIoError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException)?.code ?? "";
  return IO_ERRNOS.has(code);
}

function ioReason(error: unknown): string {
  const err = error as NodeJS.ErrnoException;
  const meaning: Record<string, string> = {
    ENOSPC: "no space left on the device",
    EDQUOT: "disk quota exceeded",
    EFBIG: "file too large for this system",
    EACCES: "permission denied",
    EPERM: "operation not permitted",
    EROFS: "read-only file system",
    ENOTDIR: "a path component is a file, not a folder",
    EEXIST: "a file is in the way of a folder",
    EISDIR: "a folder is in the way of the file",
  };
  return err?.code ? `${err.code} (${meaning[err.code] ?? err.message})` : String(error);
}
