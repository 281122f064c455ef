export type ErrorCode =
  | "AUTH"
  | "NOT_FOUND"
  | "BAD_REQUEST"
  | "RATE_LIMITED"
  | "SERVER"
  | "NETWORK"
  | "TIMEOUT"
  | "PROTOCOL"
  | "INVALID_STAC"
  | "INVALID_CONFIG"
  | "CHECKSUM"
  | "SIZE"
  | "UNSAFE_PATH"
  | "UNSUPPORTED"
  | "COLLISION"
  | "EXISTS"
  | "IO"
  | "OUTBOX_FULL"
  | "EXPIRED"
  | "ABORTED"
  | "CLOSED"
  /** A bug in this package (a TypeError, a crashed worker): reported as such, never retried. */
  | "INTERNAL";

export interface DatasphereErrorOptions {
  status?: number;
  retryAfterMs?: number;
  cause?: unknown;
  details?: Record<string, unknown>;
}

/** The one error type of the core. Its message is fit for a user and never holds a secret. */
export class DatasphereError extends Error {
  readonly code: ErrorCode;
  readonly status?: number;
  readonly retryAfterMs?: number;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: DatasphereErrorOptions = {}) {
    super(message);
    this.name = "DatasphereError";
    this.code = code;
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
    this.details = options.details;
    if (options.cause !== undefined) Object.defineProperty(this, "cause", { value: options.cause, enumerable: false });
  }
}

/** Identity by name and code, not instanceof: the sandbox CLI bundle and the tests carry their own copy of the core. */
export function isDatasphereError(value: unknown): value is DatasphereError {
  return value instanceof Error && value.name === "DatasphereError" && typeof (value as DatasphereError).code === "string";
}

const RETRYABLE: ReadonlySet<ErrorCode> = new Set(["RATE_LIMITED", "SERVER", "NETWORK", "TIMEOUT", "PROTOCOL"]);

/** Whether a failed operation may be tried again: network faults and busy servers, not bugs or refusals. */
export function isRetryable(error: unknown): boolean {
  return RETRYABLE.has(toDatasphereError(error, "").code);
}

/** Maps an HTTP status of a Data Sphere endpoint to the documented meaning. */
export function errorForStatus(status: number, what: string, retryAfterMs?: number): DatasphereError {
  if (status === 401 || status === 403) return new DatasphereError("AUTH", `${what}: token missing or invalid (HTTP ${status})`, { status });
  if (status === 404) return new DatasphereError("NOT_FOUND", `${what}: not found (HTTP 404)`, { status });
  if (status === 429) return new DatasphereError("RATE_LIMITED", `${what}: rate limited (HTTP 429)`, { status, retryAfterMs });
  if (status >= 500) return new DatasphereError("SERVER", `${what}: server error (HTTP ${status})`, { status, retryAfterMs });
  if (status >= 400) return new DatasphereError("BAD_REQUEST", `${what}: bad request (HTTP ${status})`, { status });
  return new DatasphereError("PROTOCOL", `${what}: unexpected HTTP ${status}`, { status });
}

/** Errno codes of a local file system fault (not the network). */
export const IO_ERRNOS: ReadonlySet<string> = new Set(["ENOSPC", "EDQUOT", "EFBIG", "EIO", "EACCES", "EPERM", "EROFS", "EISDIR", "ENOTDIR", "EEXIST", "EMFILE", "ENFILE", "EBADF"]);

/** Codes that name a fault of the connection: errno (ECONNRESET…), undici, ws, TLS and HTTP parser codes. */
const NETWORK_CODE = /^((?!ERR_)E[A-Z0-9_]+|UND_ERR_\w+|WS_ERR_\w+|ERR_(TLS|SSL|HTTP2?|STREAM_PREMATURE_CLOSE|SOCKET)\w*|HPE_\w+|CERT_\w+|UNABLE_TO_\w+|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN)$/;

/**
 * Turns anything thrown by undici, ws or fs into a DatasphereError with a user-fit message. Only an
 * error that names a connection or file fault is NETWORK or IO; anything else (a TypeError, a plain
 * Error from our own code, a crashed worker) is a bug: INTERNAL, which is not retried.
 */
export function toDatasphereError(error: unknown, what: string): DatasphereError {
  if (isDatasphereError(error)) return error;
  const err = error as (NodeJS.ErrnoException & { cause?: unknown }) | undefined;
  const code = typeof err?.code === "string" ? err.code : "";
  const name = err?.name ?? "";
  const prefix = what ? `${what}: ` : "";
  if (name === "AbortError" || code === "ABORT_ERR") return new DatasphereError("ABORTED", `${prefix}aborted`, { cause: error });
  if (/TIMEOUT/i.test(code) || name === "TimeoutError") return new DatasphereError("TIMEOUT", `${prefix}timed out (${code || name})`, { cause: error });
  if (IO_ERRNOS.has(code)) return new DatasphereError("IO", `${prefix}${code} ${err?.message ?? ""}`.trim(), { cause: error });
  if (NETWORK_CODE.test(code) || (err?.syscall && code)) return new DatasphereError("NETWORK", `${prefix}${code}`, { cause: error });
  // fetch() wraps the network fault in a TypeError("fetch failed") whose cause says what happened.
  if (err?.cause !== undefined && err.cause !== error) {
    const inner = toDatasphereError(err.cause, what);
    if (inner.code !== "INTERNAL") return inner;
  }
  const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return new DatasphereError("INTERNAL", `${prefix}internal error (a bug in the Data Sphere nodes; please report it): ${detail}`, { cause: error });
}
