import { DatasphereError } from "./errors";

export const DEFAULT_API_URL = "https://datasphere.astrodynamic.space";
export const DEFAULT_PUBLISH_URL = "wss://ws.datasphere.astrodynamic.space/publish/v1/";

export type AuthMode = "header" | "message";
export type DatasetApiType = "stream" | "paginate";
export type DatasetOrder = "new" | "old";

export interface DatasetQuery {
  order?: DatasetOrder;
  from?: string;
  to?: string;
}

export interface EndpointSettings {
  apiUrl: string;
  publishUrl: string;
}

/** Checks the two base URLs; each problem names the field. Returns the list of problems (empty = valid). */
export function validateEndpointSettings(settings: EndpointSettings): string[] {
  const problems: string[] = [];
  const api = tryUrl(settings.apiUrl);
  if (!api) problems.push(`apiUrl: "${settings.apiUrl}" is not a URL`);
  else if (api.protocol !== "http:" && api.protocol !== "https:") problems.push(`apiUrl: must start with http:// or https:// (got ${api.protocol}//)`);
  else if (api.username || api.password) problems.push("apiUrl: must not carry a user name or password");
  const pub = tryUrl(settings.publishUrl);
  if (!pub) problems.push(`publishUrl: "${settings.publishUrl}" is not a URL`);
  else if (pub.protocol !== "ws:" && pub.protocol !== "wss:") problems.push(`publishUrl: must start with ws:// or wss:// (got ${pub.protocol}//)`);
  else if (!pub.pathname.endsWith("/")) problems.push("publishUrl: must end with '/' (the service answers 403 without the trailing slash)");
  else if (pub.username || pub.password) problems.push("publishUrl: must not carry a user name or password");
  return problems;
}

function tryUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

/** Percent-encodes a package name for a path segment or a query value (spaces, '/', unicode). */
export function encodePackage(name: string): string {
  return encodeURIComponent(name);
}

/** Every Data Sphere URL, built in one place from the two base URLs. */
export class Endpoints {
  readonly apiBase: URL;
  readonly publishUrl: string;
  readonly apiOrigin: string;
  readonly publishOrigin: string;

  constructor(settings: EndpointSettings) {
    const problems = validateEndpointSettings(settings);
    if (problems.length > 0) throw new DatasphereError("INVALID_CONFIG", problems.join("; "));
    this.apiBase = new URL(settings.apiUrl.endsWith("/") ? settings.apiUrl : `${settings.apiUrl}/`);
    this.publishUrl = settings.publishUrl;
    this.apiOrigin = this.apiBase.origin;
    this.publishOrigin = httpOrigin(settings.publishUrl)!;
  }

  subscription(pkg: string): string {
    requirePackage(pkg);
    return new URL(`subscription/v1/?package=${encodePackage(pkg)}`, this.apiBase).toString();
  }

  dataset(pkg: string, type: DatasetApiType, query: DatasetQuery = {}): string {
    requirePackage(pkg);
    const url = new URL(`api/dataset/v1/${encodePackage(pkg)}/${type}/`, this.apiBase);
    if (query.order) url.searchParams.set("order", query.order);
    if (query.from) url.searchParams.set("from", query.from);
    if (query.to) url.searchParams.set("to", query.to);
    return url.toString();
  }

  item(pkg: string): string {
    requirePackage(pkg);
    return new URL(`api/item/v1/${encodePackage(pkg)}`, this.apiBase).toString();
  }

  /** True when the URL is on a Data Sphere origin (the only places the token may go). */
  isDatasphereOrigin(url: string | URL): boolean {
    const parsed = typeof url === "string" ? tryUrl(url) : url;
    if (!parsed) return false;
    return parsed.origin === this.apiOrigin || httpOrigin(parsed) === this.publishOrigin;
  }

  isApiOrigin(url: string | URL): boolean {
    const parsed = typeof url === "string" ? tryUrl(url) : url;
    return parsed !== undefined && parsed.origin === this.apiOrigin;
  }
}

function requirePackage(pkg: string): void {
  if (typeof pkg !== "string" || pkg.trim() === "") throw new DatasphereError("BAD_REQUEST", "package name is empty");
}

/** The documented header value: the word is `Token`, not `Bearer`. */
export function authorizationValue(token: string): string {
  return `Token ${token}`;
}

/**
 * The origin of a URL with ws/wss mapped to http/https (a ws URL's origin is "null" in WHATWG
 * terms), so a publish socket and an HTTP origin compare; undefined for an unparseable URL.
 */
export function httpOrigin(url: string | URL): string | undefined {
  const parsed = typeof url === "string" ? tryUrl(url) : url;
  if (!parsed) return undefined;
  const protocol = parsed.protocol === "wss:" ? "https:" : parsed.protocol === "ws:" ? "http:" : parsed.protocol;
  return `${protocol}//${parsed.host}`;
}
