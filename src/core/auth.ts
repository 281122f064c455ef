import { inspect } from "node:util";
import { authorizationValue, httpOrigin, type Endpoints } from "./endpoints";

/**
 * Holds the token and decides where it may go: only to the Data Sphere origins (and hosts the user
 * allows explicitly). The token is in a private field, so it is not in JSON, inspect or toString.
 */
export class Auth {
  readonly #token: string;
  readonly #allowedOrigins: ReadonlySet<string>;

  constructor(private readonly endpoints: Endpoints, token: string, extraOrigins: ReadonlyArray<string> = []) {
    this.#token = token;
    this.#allowedOrigins = new Set(extraOrigins.map(httpOrigin).filter((o): o is string => o !== undefined));
  }

  get hasToken(): boolean {
    return this.#token.length > 0;
  }

  mayReceiveToken(url: string | URL): boolean {
    if (this.endpoints.isDatasphereOrigin(url)) return true;
    const origin = httpOrigin(url);
    return origin !== undefined && this.#allowedOrigins.has(origin);
  }

  /** `{authorization: "Token …"}` for a Data Sphere origin, `{}` for any other URL. */
  headersFor(url: string | URL): Record<string, string> {
    if (!this.hasToken || !this.mayReceiveToken(url)) return {};
    return { authorization: authorizationValue(this.#token) };
  }

  /** The first message of message-auth mode on the publish socket. */
  authMessage(): string {
    return JSON.stringify({ Authorization: authorizationValue(this.#token) });
  }

  /** Texts that must never appear in output: for `redact`. */
  secrets(): string[] {
    return this.#token ? [this.#token] : [];
  }

  /** A copy of this auth that also sends the token to the given extra origins. */
  withExtraOrigins(origins: ReadonlyArray<string>): Auth {
    return new Auth(this.endpoints, this.#token, [...this.#allowedOrigins, ...origins]);
  }

  toString(): string {
    return "[Auth token=***]";
  }

  toJSON(): string {
    return this.toString();
  }

  [inspect.custom](): string {
    return this.toString();
  }
}
