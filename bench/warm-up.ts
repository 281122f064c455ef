import { get } from "node:http";
import { request } from "undici";

/**
 * One small request through each HTTP client a worker may measure (undici, node:http, and fetch, which
 * `eventsource` uses), before the measured section: undici's first request in a process costs
 * ~100-150 ms (module start, its WebAssembly HTTP parser compiled), node:http's ~10 ms. A live
 * subscription or a long pull pays that once per process; in a 10,000-Item run (0.5-1 s) it would
 * weigh 10-20% against the undici readers and both nodes. Any answer will do (a 404 warms as well).
 */
export async function warmUpClients(url: string, headers: Record<string, string>): Promise<void> {
  const response = await request(url, { headers });
  await response.body.text();
  await new Promise<void>((resolve, reject) => {
    get(url, { headers }, (res) => {
      res.resume();
      res.on("end", resolve);
      res.on("error", reject);
    }).on("error", reject);
  });
  await (await fetch(url, { headers })).text();
}
