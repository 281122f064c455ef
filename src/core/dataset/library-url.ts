import type { Endpoints } from "../endpoints";
import { DatasphereError } from "../errors";

export type PullMode = "stream" | "paginate" | "item";

export interface LibraryUrl {
  mode: PullMode;
  package: string;
  url: string;
}

/**
 * Reads a URL pasted from the Dashboard's Data Library (dataset stream or paginate, or item). It must
 * be on the configured API origin: the token never goes anywhere else.
 */
export function parseLibraryUrl(text: string, endpoints: Pick<Endpoints, "apiBase" | "apiOrigin" | "isApiOrigin">): LibraryUrl {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new DatasphereError("BAD_REQUEST", "msg.url is not a URL");
  }
  if (!endpoints.isApiOrigin(url)) {
    throw new DatasphereError("BAD_REQUEST", `msg.url refused: ${url.origin} is not the configured API origin (${endpoints.apiOrigin}); no request was sent`);
  }
  const basePath = endpoints.apiBase.pathname;
  const path = url.pathname.startsWith(basePath) ? url.pathname.slice(basePath.length) : url.pathname.replace(/^\//, "");
  const dataset = /^api\/dataset\/v1\/([^/]+)\/(stream|paginate)\/?$/.exec(path);
  if (dataset) return { mode: dataset[2] as PullMode, package: decode(dataset[1]), url: url.toString() };
  const item = /^api\/item\/v1\/([^/]+)\/?$/.exec(path);
  if (item) return { mode: "item", package: decode(item[1]), url: url.toString() };
  throw new DatasphereError("BAD_REQUEST", "msg.url is not a Data Library dataset or item URL (expected /api/dataset/v1/<package>/stream|paginate/ or /api/item/v1/<package>)");
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
