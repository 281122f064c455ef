import { strict as assert } from "node:assert";
import { request } from "undici";
import { startSandbox, type Sandbox } from "../../src/sandbox";
import { SseParser, type SseEvent } from "../../src/core/sse";
import { waitFor } from "../helpers/wait";
import { seeded } from "../helpers/sse-test-server";
import { pushInChunks } from "../helpers/sse-chunks";

const TOKEN = "sandbox-token-sse-parse";

/** Reads a sandbox response's raw bytes until `enough(bytes)` holds or the body ends. */
async function capture(url: string, enough: (bytes: Buffer) => boolean, onOpen?: () => void): Promise<Buffer> {
  const controller = new AbortController();
  const response = await request(url, { headers: { authorization: `Token ${TOKEN}` }, signal: controller.signal, bodyTimeout: 0 });
  assert.equal(response.statusCode, 200);
  onOpen?.();
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of response.body) {
      chunks.push(chunk as Buffer);
      if (enough(Buffer.concat(chunks))) break;
    }
  } finally {
    controller.abort();
  }
  return Buffer.concat(chunks);
}

function parse(bytes: Buffer, cuts: number[]): SseEvent[] {
  const parser = new SseParser();
  const events = pushInChunks(parser, bytes, cuts);
  parser.end();
  return events;
}

function fingerprint(events: SseEvent[]): string {
  return events.map((e) => `${e.type}\u0001${e.id ?? "\u0002"}\u0001${e.lastEventId}\u0001${e.data}`).join("\u0003");
}

/**
 * Thousands of random chunkings: most over random 96 KiB windows of the stream (any byte sequence
 * must parse the same however it is cut), some over the whole stream; then every byte offset of
 * the first two events.
 */
function assertChunkingInvariant(bytes: Buffer, seed: number, rounds: number): void {
  const random = seeded(seed);
  const cutsFor = (length: number, max: number) => {
    const cuts: number[] = [];
    for (let at = 1 + Math.floor(random() * max); at < length; at += 1 + Math.floor(random() * max)) cuts.push(at);
    return cuts;
  };
  for (let r = 0; r < rounds; r++) {
    const from = Math.floor(random() * Math.max(1, bytes.length - 98_304));
    const window = bytes.subarray(from, from + 98_304);
    const max = [3, 50, 700, 9000][r % 4];
    assert.equal(fingerprint(parse(window, cutsFor(window.length, max))), fingerprint(parse(window, [])), `window round ${r}`);
  }
  const reference = fingerprint(parse(bytes, []));
  for (let r = 0; r < 20; r++) assert.equal(fingerprint(parse(bytes, cutsFor(bytes.length, [4096, 65_536][r % 2]))), reference, `whole-stream round ${r}`);
  const second = bytes.indexOf("\n\n", bytes.indexOf("\n\n", bytes.indexOf("data:")) + 2);
  const head = bytes.subarray(0, Math.min(bytes.length, second + 2));
  const headPrint = fingerprint(parse(head, []));
  for (let i = 1; i < head.length; i++) assert.equal(fingerprint(parse(head, [i])), headPrint, `split at ${i}`);
}

describe("core/sse parser on the sandbox's streams", function () {
  this.timeout(120_000);
  let sb: Sandbox;
  before(async () => {
    sb = await startSandbox({ port: 0, token: TOKEN, seed: 3, rate: 0, heartbeatMs: 0, keepAliveMs: 5 });
  });
  after(async () => sb.close());

  it("parses the subscription stream (keep-alives, malformed events) identically under any chunking", async () => {
    sb.faults.set({ malformedEvery: 25 }, "subscription");
    const pkg = "sentinel-2-l2a-live";
    const url = `${sb.url}/subscription/v1/?package=${pkg}`;
    const bytes = await capture(
      url,
      (b) => b.includes("id: 200\n"),
      () => {
        waitFor(() => sb.liveSubscriberCount(pkg) === 1, "subscribed")
          .then(async () => {
            for (let i = 0; i < 200; i++) {
              sb.publishLive(pkg);
              if (i % 20 === 0) await new Promise((r) => setTimeout(r, 10));
            }
          })
          .catch((error) => {
            // The capture waits for event 200; say why it never comes instead of timing out silently.
            console.error(`    ! publishing to the subscriber failed: ${(error as Error).message}`);
          });
      },
    );
    sb.faults.clear();
    const events = parse(bytes, []);
    const items = events.filter((e) => e.id !== undefined);
    assert.ok(items.length >= 199, `got ${items.length} Items`);
    items.forEach((e, i) => {
      assert.equal(e.id, String(i + 1));
      const item = JSON.parse(e.data);
      assert.equal(item.type, "Feature");
    });
    assert.ok(events.some((e) => e.id === undefined && e.data.includes("truncated-by-fault-injection")), "malformed events are events too");
    assert.ok(bytes.includes(": keep-alive"), "keep-alive comments present");
    assertChunkingInvariant(bytes, 1, 2000);
  });

  it("parses the dataset stream (NDJSON, and SSE-framed) identically under any chunking", async () => {
    for (const framing of [false, true]) {
      if (framing) sb.faults.set({ sseFraming: true }, "dataset");
      const bytes = await capture(`${sb.url}/api/dataset/v1/sentinel-2-l2a-sample/stream/?order=old`, () => false);
      sb.faults.clear();
      const events = parse(bytes, []);
      assert.equal(events.length, 500, framing ? "SSE-framed" : "NDJSON");
      assert.ok(events.every((e) => JSON.parse(e.data).type === "Feature"));
      assertChunkingInvariant(bytes, framing ? 3 : 2, 1000);
    }
  });
});
