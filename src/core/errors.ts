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
  | "TOO_LARGE"
  | "UNSAFE_PATH"
  | "UNSUPPORTED"
  | "COLLISION"
  | "EXISTS"
  | "IO"
  | "OUTBOX_FULL"
  | "EXPIRED"
  | "ABORTED"
  | "CLOSED";

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

/** Bundles of the core are duplicated per node file, so identity checks go by name and code. */
export function isDatasphereError(value: unknown): value is DatasphereError {
  return value instanceof Error && value.name === "DatasphereError" && typeof (value as DatasphereError).code === "string";
}

const RETRYABLE: ReadonlySet<ErrorCode> = new Set(["RATE_LIMITED", "SERVER", "NETWORK", "TIMEOUT", "PROTOCOL"]);

export function isRetryable(error: unknown): boolean {
  return isDatasphereError(error) ? RETRYABLE.has(error.code) : true;
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

/** Turns anything thrown by undici, ws or fs into a DatasphereError with a user-fit message. */
export function toDatasphereError(error: unknown, what: string): DatasphereError {
  if (isDatasphereError(error)) return error;
  const err = error as NodeJS.ErrnoException | undefined;
  const code = err?.code ?? "";
  const name = err?.name ?? "";
  if (name === "AbortError" || code === "ABORT_ERR") return new DatasphereError("ABORTED", `${what}: aborted`, { cause: error });
  if (/TIMEOUT/i.test(code) || name === "TimeoutError") return new DatasphereError("TIMEOUT", `${what}: timed out (${code || name})`, { cause: error });
  if (["ENOSPC", "EDQUOT", "EFBIG", "EIO", "EACCES", "EPERM", "EROFS", "EISDIR", "ENOTDIR", "EEXIST", "EMFILE", "ENFILE"].includes(code)) {
    return new DatasphereError("IO", `${what}: ${code} ${err?.message ?? ""}`.trim(), { cause: error });
  }
  const detail = code || err?.message || String(error);
  return new DatasphereError("NETWORK", `${what}: ${detail}`, { cause: error });
}
