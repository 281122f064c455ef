import type { Dispatcher } from "undici";
import { httpOrigin } from "../endpoints";
import type { Clock } from "../clock";
import { DatasphereError } from "../errors";
import type { ApiAuth } from "./auth";
import { checkSupported, conformsTo, linkOf, readCapabilities, type ApiCapabilities } from "./capabilities";
import { isSearchCursor, SearchPosition, type SearchCursor } from "./cursor";
import { searchBody, searchQuery } from "./encode";
import { fetchJson, type StacHttpOptions, type StacRequest } from "./http";
import { readSearchPages, type SearchPage } from "./pages";
import type { SearchMethod, SearchParams } from "./params";

export interface StacApiOptions {
  /** The landing page URL of the API. */
  url: string;
  auth: ApiAuth;
  clock?: Clock;
  dispatcher?: Dispatcher;
  /** Largest landing page, conformance or search page accepted. Default 32 MiB. */
  maxDocumentBytes?: number;
}

/** Per run: cancellation, retries, timeouts, progress. */
export type RunOptions = Omit<StacHttpOptions, "auth" | "isApiOrigin" | "clock" | "dispatcher" | "maxDocumentBytes">;

/** What to search, as the node resolved it from its properties and the input message. */
export interface SearchSpec {
  params: SearchParams;
  method: SearchMethod;
  maxItems?: number;
  /** A cursor from an earlier search's completion message: continue exactly after it. */
  resume?: SearchCursor;
}

export interface SearchPlan {
  first: StacRequest;
  skip: number;
  delivered: number;
  maxItems?: number;
  position: SearchPosition;
}

/**
 * One STAC API: its landing page and conformance (read once and kept), searches planned against
 * them, and pages read along `rel=next`. Credentials go to the API's origin only.
 */
export class StacApiClient {
  readonly url: string;
  readonly origin: string;
  private capabilitiesPromise?: Promise<ApiCapabilities>;

  constructor(private readonly options: StacApiOptions) {
    let parsed: URL;
    try {
      parsed = new URL(options.url);
    } catch {
      throw new DatasphereError("INVALID_CONFIG", `STAC API url "${options.url.slice(0, 80)}" is not a URL`);
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new DatasphereError("INVALID_CONFIG", "STAC API url must start with http:// or https://");
    if (parsed.username || parsed.password) throw new DatasphereError("INVALID_CONFIG", "STAC API url must not carry a user name or password (use the auth settings)");
    this.url = parsed.toString();
    this.origin = httpOrigin(parsed)!;
  }

  isApiOrigin(url: string): boolean {
    return httpOrigin(url) === this.origin;
  }

  httpOptions(run: RunOptions): StacHttpOptions {
    const o = this.options;
    return { ...run, auth: o.auth, isApiOrigin: (u) => this.isApiOrigin(u), clock: o.clock, dispatcher: o.dispatcher, maxDocumentBytes: o.maxDocumentBytes };
  }

  /** The landing page and conformance classes: fetched once; a failure is not kept (the next search asks again). */
  capabilities(run: RunOptions = {}): Promise<ApiCapabilities> {
    if (!this.capabilitiesPromise) {
      this.capabilitiesPromise = this.fetchCapabilities(run);
      this.capabilitiesPromise.catch(() => (this.capabilitiesPromise = undefined));
    }
    return this.capabilitiesPromise;
  }

  private async fetchCapabilities(run: RunOptions): Promise<ApiCapabilities> {
    const options = this.httpOptions(run);
    const landing = await fetchJson({ method: "GET", href: this.url }, options, "STAC API landing page");
    if (!landing || typeof landing !== "object" || Array.isArray(landing)) throw new DatasphereError("PROTOCOL", "STAC API landing page: not a JSON object");
    let classes = conformsTo(landing);
    if (!classes) {
      const href = linkOf(landing, "conformance", this.url)[0]?.href ?? new URL("conformance", this.url.endsWith("/") ? this.url : `${this.url}/`).toString();
      classes = conformsTo(await fetchJson({ method: "GET", href }, options, "STAC API conformance")) ?? [];
    }
    return readCapabilities(landing, this.url, classes);
  }

  /** Resolves a spec into its first request, checked against what the API declares (nothing searched yet). */
  async plan(spec: SearchSpec, run: RunOptions = {}): Promise<SearchPlan> {
    if (spec.resume !== undefined) return this.planResume(spec.resume, spec.maxItems);
    const caps = await this.capabilities(run);
    const href = checkSupported(caps, spec.params, spec.method, this.origin);
    let first: StacRequest;
    if (spec.method === "GET") {
      const url = new URL(href);
      for (const [key, value] of searchQuery(spec.params)) url.searchParams.set(key, value);
      first = { method: "GET", href: url.toString() };
    } else {
      first = { method: "POST", href, body: searchBody(spec.params) };
    }
    return { first, skip: 0, delivered: 0, maxItems: spec.maxItems, position: new SearchPosition(first) };
  }

  private planResume(cursor: unknown, maxItems?: number): SearchPlan {
    if (!isSearchCursor(cursor)) throw new DatasphereError("BAD_REQUEST", "msg.resume is not a STAC search cursor (kind stac-search with a request); no request was sent");
    if (!this.isApiOrigin(cursor.request.href)) throw new DatasphereError("BAD_REQUEST", "msg.resume refused: its request is not on the STAC API's origin; no request was sent");
    const skip = Number.isInteger(cursor.skip) && cursor.skip > 0 ? cursor.skip : 0;
    const delivered = Number.isInteger(cursor.delivered) && cursor.delivered > 0 ? cursor.delivered : 0;
    const first: StacRequest = { method: cursor.request.method, href: cursor.request.href };
    if (cursor.request.body && typeof cursor.request.body === "object") first.body = cursor.request.body;
    if (cursor.request.headers && typeof cursor.request.headers === "object") first.headers = cursor.request.headers;
    return { first, skip, delivered, maxItems, position: new SearchPosition(first, skip, delivered) };
  }

  /** The pages of a planned search. */
  pages(plan: SearchPlan, run: RunOptions = {}): AsyncGenerator<SearchPage, void, undefined> {
    return readSearchPages(plan.first, {
      ...this.httpOptions(run),
      maxItems: plan.maxItems,
      skipFirst: plan.skip,
      deliveredBefore: plan.delivered,
      reservedHeader: this.options.auth.headerName,
    });
  }

  /** Every Item of a search, in order (plans, then pages): for code that does not need the cursor. */
  async *items(spec: SearchSpec, run: RunOptions = {}): AsyncGenerator<Record<string, unknown>, void, undefined> {
    const plan = await this.plan(spec, run);
    for await (const page of this.pages(plan, run)) yield* page.items;
  }
}
