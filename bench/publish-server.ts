// A counting publish endpoint for bench/publish.ts, in its own process so that it does not share the
// event loop with the client under test. Prints {"url"} on stdout; on IPC {expect: n} it answers
// {ready} and then {received: n} once n more frames have arrived.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer } from "ws";

const http = createServer();
const wss = new WebSocketServer({ server: http, path: "/publish/v1/", perMessageDeflate: false, maxPayload: 16 << 20 });
let count = 0;
let target = Infinity;
wss.on("connection", (ws) => {
  ws.on("message", () => {
    count++;
    if (count >= target) {
      target = Infinity;
      process.send?.({ received: count });
    }
  });
});
process.on("message", (m: { expect?: number }) => {
  if (typeof m.expect === "number") {
    count = 0;
    target = m.expect;
    process.send?.({ ready: true });
  }
});
process.on("disconnect", () => process.exit(0));
http.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}/publish/v1/` })}\n`);
});
