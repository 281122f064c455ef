import { strict as assert } from "node:assert";
import { Agent, type Dispatcher } from "undici";
import { readStream } from "../../src/core/dataset/stream-reader";
import type { DatasetEvent } from "../../src/core/dataset/events";
import { makeItems, startScriptedServer, type ScriptedServer } from "../helpers/sse-test-server";
import { waitFor } from "../helpers/wait";

/** A dispatcher that counts the body bytes handed to the reader (what the process has received). */
function countingDispatcher(): { dispatcher: Dispatcher; received: () => number } {
  let received = 0;
  const dispatcher = new Agent().compose((dispatch) => (opts, handler) => {
    // undici 7 hands interceptors the newer handler shape (it wraps the reader's classic callbacks).
    const h = handler as unknown as Record<string, ((...args: unknown[]) => unknown) | undefined>;
    const forward = (name: string) => (...args: unknown[]) => h[name]?.call(h, ...args);
    const counted = {
      onRequestStart: forward("onRequestStart"),
      onRequestUpgrade: forward("onRequestUpgrade"),
      onResponseStart: forward("onResponseStart"),
      onResponseData: (controller: unknown, chunk: Buffer) => {
        received += chunk.length;
        return h.onResponseData?.call(h, controller, chunk);
      },
      onResponseEnd: forward("onResponseEnd"),
      onResponseError: forward("onResponseError"),
    };
    return dispatch(opts, counted as unknown as Dispatcher.DispatchHandler);
  });
  return { dispatcher, received: () => received };
}

describe("core/dataset stream read path", function () {
  this.timeout(30_000);
  let server: ScriptedServer | undefined;
  afterEach(async () => server?.close());

  it("one line per write, then a reset after the client received everything: every complete line is yielded before the error", async () => {
    const items = makeItems(300, 800);
    const lines = items.map((item) => `${item}\n`);
    const total = Buffer.byteLength(lines.join("")) + 100;
    const { dispatcher, received } = countingDispatcher();
    server = await startScriptedServer(() => ({
      headers: { "content-type": "application/x-ndjson" },
      writes: [...lines, lines[0].slice(0, 100)],
      hold: waitFor(() => received() === total, "the reader received every byte"),
      then: "reset",
    }));
    const url = `${server.url}/api/dataset/v1/x/stream/`;
    const seen: number[] = [];
    let failure: unknown;
    try {
      for await (const event of readStream(url, { auth: { headersFor: () => ({}) }, isApiOrigin: () => true, dispatcher, retries: 0 }) as AsyncGenerator<DatasetEvent>) {
        if (event.kind === "items") for (const item of event.items) seen.push((item.properties as { seq: number }).seq);
        // A slow consumer: the reset happens while most lines wait in the reader's queue.
        await new Promise((r) => setTimeout(r, 2));
      }
    } catch (error) {
      failure = error;
    }
    assert.deepEqual(seen, items.map((_, i) => i), `every complete line, in order (then: ${String(failure)})`);
    assert.equal((failure as { code?: string })?.code, "NETWORK", "then the reset, as a NETWORK error");
  });
});
