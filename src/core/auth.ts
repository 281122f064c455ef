import { inspect } from "node:util";
import { authorizationValue, httpOrigin, type Endpoints } from "./endpoints";

/**
 * The one shape in which credentials reach core. Each consumer asks for the URL it is about to
 * contact (every redirect hop again), and gets nothing for a URL that may not receive the secret.
 */
export interface RequestAuth {
  /** The auth headers for a request to this URL; `{}` where the secret may not go. */
  headersFor(url: string | URL): Record<string, string>;
  /** The first frame of message-auth mode on a socket to this URL; undefined where the secret may not go. */
  authMessageFor?(url: string | URL): string | undefined;
}

/**
 * Holds the token and decides where it may go: only to the Data Sphere origins (and hosts the user
 * allows explicitly). The token is in a private field, so it is not in JSON, inspect or toString.
 */
export class Auth implements RequestAuth {
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

  authMessageFor(url: string | URL): string | undefined {
    return this.mayReceiveToken(url) ? this.authMessage() : undefined;
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
