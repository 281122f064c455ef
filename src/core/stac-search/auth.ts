import { inspect } from "node:util";
import type { RequestAuth } from "../auth";
import { httpOrigin } from "../endpoints";
import { DatasphereError } from "../errors";

export type ApiAuthMode = "none" | "bearer" | "header";

const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
const RESERVED = new Set(["host", "content-length", "content-type", "transfer-encoding", "connection", "cookie", "accept"]);

/**
 * The secret of one STAC API and where it may go: only to that API's origin. The secret is in a
 * private field, so it is not in JSON, inspect or toString.
 */
export class ApiAuth implements RequestAuth {
  readonly #secret: string;
  readonly #origin?: string;
  readonly headerName: string;

  constructor(apiUrl: string, readonly mode: ApiAuthMode, secret: string, headerName = "") {
    this.#secret = mode === "none" ? "" : secret;
    this.#origin = httpOrigin(apiUrl);
    const name = mode === "bearer" ? "authorization" : headerName.trim().toLowerCase();
    if (mode === "header" && (!HEADER_NAME.test(name) || RESERVED.has(name))) {
      throw new DatasphereError("INVALID_CONFIG", `auth header name "${headerName.slice(0, 40)}" is not a usable HTTP header name`);
    }
    this.headerName = mode === "none" ? "" : name;
  }

  get hasSecret(): boolean {
    return this.#secret.length > 0;
  }

  mayReceiveSecret(url: string | URL): boolean {
    return this.#origin !== undefined && httpOrigin(url) === this.#origin;
  }

  /** The auth header for a URL on the API's origin; `{}` for any other URL. */
  headersFor(url: string | URL): Record<string, string> {
    if (!this.hasSecret || !this.mayReceiveSecret(url)) return {};
    return { [this.headerName]: this.mode === "bearer" ? `Bearer ${this.#secret}` : this.#secret };
  }

  secrets(): string[] {
    return this.#secret ? [this.#secret] : [];
  }

  toString(): string {
    return `[ApiAuth ${this.mode}${this.hasSecret ? " secret=***" : ""}]`;
  }

  toJSON(): string {
    return this.toString();
  }

  [inspect.custom](): string {
    return this.toString();
  }
}
