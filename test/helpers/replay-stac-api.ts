import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface ReplayStacApi {
  /** The landing page, ending in "/". */
  url: string;
  /** How many search pages were served so far. */
  served(): number;
  close(): void;
}

/**
 * A minimal STAC API on loopback: a landing page whose search link is GET `/search`, and search pages
 * numbered by the `page` query parameter (0 when absent), each body written by `pageBody` with the
 * server's base URL, so that next links can point back at it.
 */
export async function startReplayStacApi(pageBody: (page: number, base: string) => string): Promise<ReplayStacApi> {
  let served = 0;
  let base = "";
  const conformsTo = ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search"];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", base);
    let body: string;
    if (url.pathname === "/") body = JSON.stringify({ type: "Catalog", id: "replay", conformsTo, links: [{ rel: "search", href: `${base}/search`, method: "GET" }] });
    else {
      served++;
      body = pageBody(Number(url.searchParams.get("page") ?? "0"), base);
    }
    res.writeHead(200, { "content-type": "application/geo+json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url: `${base}/`, served: () => served, close: () => (server.closeAllConnections(), server.close()) };
}
