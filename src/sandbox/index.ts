import { EventEmitter } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { ChecksumCache, type AssetContent } from "./asset-bytes";
import { serveAsset } from "./asset-route";
import {
  decodeCursor, encodeCursor, GeneratedSource, PAGE_SIZE, parseDatasetQuery, Selection, StoredSource,
  type DatasetQuery, type DatasetSource,
} from "./datasets";
import { Faults, type ConnectionFaults, type FaultScope } from "./faults";
import { FaultyWriter } from "./faulty-writer";
import { authorise, decodeSegment, sendError, sendJson } from "./http-util";
import { assetDefinitions, buildItem, buildItemText, defaultCollection, type Mission, type Recipe, type StacVersion } from "./items";
import { PublishEndpoint, type PublishedRecord, type RejectedMessage } from "./publish";
import { SubscriptionHub } from "./sse-hub";
import { firstPerCollection, StacApi, STAC_API_PATH } from "./stac-api";

export { Faults } from "./faults";
export type { FaultSpec, FaultScope, FailNext } from "./faults";
export type { PublishedRecord, RejectedMessage } from "./publish";
export { PUBLISH_CLOSE } from "./publish";
export { contentBytes } from "./asset-bytes";
export type { StacApi, StacSearchRecord } from "./stac-api";
export type { AssetContent } from "./asset-bytes";

/** Fixed package names (documented in docs/sandbox.md). */
export const PACKAGES = {
  subscription: ["sentinel-2-l2a-live", "landsat-c2-l2-live"],
  dataset: { "sentinel-2-l2a-sample": 500, "landsat-c2-l2-sample": 200, "sentinel-2-l2a-1m": 1_000_000, "sentinel-2-l2a-sample-stac-1.1": 100 },
  item: ["sentinel-2-l2a-example", "landsat-c2-l2-example"],
} as const;

export interface SandboxOptions {
  /** TCP port; 0 (default) picks a free one. */
  port?: number;
  /** Interface to listen on; default 127.0.0.1. */
  host?: string;
  /** The one valid API token; default "sandbox-token". */
  token?: string;
  /** Seed of every generated Item and asset body; default 1. */
  seed?: number;
  /** Live Items per second per live subscription package; 0 (default) = off. */
  rate?: number;
  /** Publish socket heartbeat period; default 25000; 0 = none. */
  heartbeatMs?: number;
  /** Heartbeat form: a WebSocket ping frame (default) or a text frame `{"heartbeat": "<time>"}`. */
  heartbeat?: "ping" | "text";
  /** Subscription keep-alive comment period; default 15000; 0 = none. */
  keepAliveMs?: number;
  /** `retry:` advice sent at the start of every subscription stream; default 3000. */
  retryMs?: number;
  /** Bytes of each generated band/visual asset body; default 65536 (thumbnail <= 16 KiB, metadata <= 8 KiB). */
  assetSize?: number;
  /** Per-asset-key size overrides, e.g. { B02_10m: 2 ** 30 }. */
  assetSizes?: Record<string, number>;
  /** Distinct bodies per asset key (index modulo this); default 16. Bounds checksum work. */
  assetVariants?: number;
  /** Events kept per subscription package for Last-Event-ID replay; default 1000. */
  replayBuffer?: number;
  /** Events queued for one slow subscriber before it is dropped; default 10000. */
  maxQueuedEvents?: number;
  /** Subscription streams: one write per event ("event", default, like a live server) or "batched" per event-loop turn. */
  subscriptionWrites?: "event" | "batched";
  /** `provider` default of publish messages (the token's organisation); default "sandbox-org". */
  organisation?: string;
  /** 404 for subscription packages nobody declared or published to; default false (any name is accepted and waits). */
  strictPackages?: boolean;
  /** Assets need the token too; default true. */
  requireAssetAuth?: boolean;
  /** Message-auth deadline on the publish socket; default 10000. */
  authTimeoutMs?: number;
  /** Add the fixed sample packages; default true. */
  defaultPackages?: boolean;
  /** Base URL written into Items (asset hrefs, links) instead of the listening address. */
  publicUrl?: string;
  /** Most publish records kept in `published` and per published dataset package (oldest dropped first); default 100000. */
  maxStored?: number;
  /** Log lines (malformed publish messages, internal errors); default silent. */
  log?: (line: string) => void;
}

export interface DatasetOptions {
  count: number;
  /** "sentinel-2" (default) or "landsat". */
  mission?: Mission;
  /** Items' `collection`; default from the mission (sentinel-2-l2a / landsat-c2-l2). */
  collection?: string;
  /** Datetime of item 0: ms or an RFC 3339 string; default 2024-01-01T00:00:00Z. */
  start?: number | string;
  /** Time between consecutive Items; default 3600000 (1 h). */
  stepMs?: number;
  stacVersion?: StacVersion;
  assetSize?: number;
  assetSizes?: Record<string, number>;
  /** Distinct bodies per asset key; 1 makes every Item share one body per key (one checksum to compute for huge bodies). */
  assetVariants?: number;
}

export interface SandboxStats {
  connections: number;
  requests: number;
  unauthorized: number;
  forbidden: number;
  notFound: number;
  badRequests: number;
  subscriptionConnections: number;
  datasetRequests: number;
  itemRequests: number;
  assetRequests: number;
  publishConnections: number;
  publishAccepted: number;
  malformedPublish: number;
  eventsSent: number;
  /** Items written to dataset streams (what backpressure holds back). */
  itemsStreamed: number;
  faultsInjected: number;
}

export interface AddedAsset {
  href: string;
  size: number;
  /** sha2-256 multihash of the body. */
  checksum: string;
  type: string;
}

export interface Sandbox {
  /** http://host:port (no trailing slash); the config node's apiUrl. */
  readonly url: string;
  readonly apiUrl: string;
  /** ws://host:port/publish/v1/ */
  readonly publishUrl: string;
  readonly token: string;
  readonly port: number;
  readonly faults: Faults;
  /** Accepted publish messages, in arrival order. */
  readonly published: PublishedRecord[];
  /** Publish messages that failed validation. */
  readonly rejected: RejectedMessage[];
  readonly stats: SandboxStats;
  /** "published" (PublishedRecord), "rejected" (RejectedMessage), "live" ({pkg, id}). */
  readonly events: EventEmitter;
  /** The STAC API over the generated datasets (one collection per distinct Item collection), at `${url}/stac-api/`. */
  readonly stacApi: StacApi;
  addDataset(name: string, options: DatasetOptions): void;
  /** Serves `body` (or `size` generated bytes) at /assets/custom/<path>. */
  addAsset(path: string, body: Buffer | string | number, type?: string): AddedAsset;
  /** Serves this object at /api/item/v1/<name>. */
  addItem(name: string, item: object): void;
  /** Pushes an Item to a subscription package (a generated one when item is omitted: Landsat for landsat-c2-l2-live, else Sentinel-2 L2A); returns the event id. */
  publishLive(pkg: string, item?: object): number;
  /** Generated Item i of a dataset package (what stream/paginate serve). */
  datasetItem(pkg: string, index: number): Promise<Record<string, unknown>>;
  liveSubscriberCount(pkg: string): number;
  /** Open TCP sockets (HTTP, SSE and WebSocket). */
  openSockets(): number;
  /** Resolves once `count` messages were accepted in total (since start), with the records kept. */
  waitForPublished(count: number, timeoutMs?: number): Promise<PublishedRecord[]>;
  close(): Promise<void>;
}

interface GeneratedPackage {
  recipe: Recipe;
  source: GeneratedSource;
  ready: Set<number>;
}

interface LivePackage {
  recipe: Recipe;
  next: number;
  ready: Set<number>;
}

const DEFAULT_START = Date.parse("2024-01-01T00:00:00Z");

export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const token = options.token ?? "sandbox-token";
  const seed = options.seed ?? 1;
  const host = options.host ?? "127.0.0.1";
  const log = options.log ?? (() => undefined);
  const assetSize = options.assetSize ?? 64 * 1024;
  const assetVariants = options.assetVariants ?? 16;
  const requireAssetAuth = options.requireAssetAuth ?? true;
  const maxStored = options.maxStored ?? 100_000;
  const faults = new Faults();
  const checksums = new ChecksumCache();
  const events = new EventEmitter();
  const published: PublishedRecord[] = [];
  const rejected: RejectedMessage[] = [];
  const sockets = new Set<Socket>();
  const generated = new Map<string, GeneratedPackage>();
  const stored = new Map<string, StoredSource>();
  const live = new Map<string, LivePackage>();
  const items = new Map<string, () => Promise<Record<string, unknown>>>();
  /** Every generator recipe by package, with how many Items it has: what asset URLs resolve against. */
  const recipes = new Map<string, { recipe: Recipe; count: number }>();
  const customAssets = new Map<string, { content: AssetContent; type: string }>();
  const timers: NodeJS.Timeout[] = [];
  const counters = {
    connections: 0, requests: 0, unauthorized: 0, forbidden: 0, notFound: 0, badRequests: 0,
    subscriptionConnections: 0, datasetRequests: 0, itemRequests: 0, assetRequests: 0,
    publishAccepted: 0, malformedPublish: 0, itemsStreamed: 0,
  };
  let baseUrl = "";

  const hub = new SubscriptionHub({
    keepAliveMs: options.keepAliveMs ?? 15_000,
    retryMs: options.retryMs ?? 3_000,
    replayBuffer: options.replayBuffer ?? 1000,
    maxQueuedEvents: options.maxQueuedEvents ?? 10_000,
    writes: options.subscriptionWrites,
    onInjected: () => faults.injected++,
  });

  const recipeFor = (pkg: string, mission: Mission, over: Partial<Recipe> = {}): Recipe => ({
    seed, pkg, mission, collection: defaultCollection(mission), stacVersion: "1.0.0",
    assetSize, assetSizes: options.assetSizes ?? {}, assetVariants, ...over,
  });

  // ---- Items and their checksums -------------------------------------------------------------
  const assetHref = (recipe: Recipe, index: number) => (def: { key: string; fileSuffix: string }, itemId: string) =>
    `${baseUrl}/assets/${encodeURIComponent(recipe.pkg)}/${index}/${encodeURIComponent(def.key)}/${encodeURIComponent(itemId + def.fileSuffix)}`;

  async function ensureChecksums(recipe: Recipe, ready: Set<number>, index: number): Promise<void> {
    const variant = index % Math.max(1, recipe.assetVariants);
    if (ready.has(variant)) return;
    for (const def of assetDefinitions(recipe, index)) await checksums.compute(def.content);
    ready.add(variant);
  }

  const contextFor = (recipe: Recipe, index: number, selfHref: string) => ({
    baseUrl,
    selfHref,
    assetHref: assetHref(recipe, index),
    checksum: (content: AssetContent) => checksums.get(content) ?? "",
  });

  function itemSync(recipe: Recipe, index: number, ms: number, selfHref: string): Record<string, unknown> {
    return buildItem(recipe, index, ms, contextFor(recipe, index, selfHref));
  }

  function itemTextSync(recipe: Recipe, index: number, ms: number, selfHref: string): string {
    return buildItemText(recipe, index, ms, contextFor(recipe, index, selfHref));
  }

  const selfOf = (pkg: string, index: number) => `${baseUrl}/stac/items/${encodeURIComponent(pkg)}/${index}`;

  async function generatedItem(pkg: GeneratedPackage, index: number): Promise<Record<string, unknown>> {
    await ensureChecksums(pkg.recipe, pkg.ready, index);
    return itemSync(pkg.recipe, index, pkg.source.datetimeOf(index), selfOf(pkg.recipe.pkg, index));
  }

  function addDataset(name: string, o: DatasetOptions): void {
    if (!name) throw new Error("dataset name is empty");
    if (!Number.isInteger(o.count) || o.count < 0) throw new Error("count must be a non-negative integer");
    const mission = o.mission ?? "sentinel-2";
    const start = o.start === undefined ? DEFAULT_START : typeof o.start === "number" ? o.start : Date.parse(o.start);
    if (Number.isNaN(start)) throw new Error(`start is not a date: ${String(o.start)}`);
    const recipe = recipeFor(name, mission, {
      collection: o.collection ?? defaultCollection(mission),
      stacVersion: o.stacVersion ?? "1.0.0",
      assetSize: o.assetSize ?? assetSize,
      assetSizes: o.assetSizes ?? options.assetSizes ?? {},
      assetVariants: o.assetVariants ?? assetVariants,
    });
    generated.set(name, { recipe, source: new GeneratedSource(o.count, start, o.stepMs ?? 3_600_000), ready: new Set() });
    recipes.set(name, { recipe, count: o.count });
  }

  function addLive(name: string, mission: Mission): void {
    const recipe = recipeFor(name, mission);
    live.set(name, { recipe, next: 0, ready: new Set() });
    if (!recipes.has(name)) recipes.set(name, { recipe, count: Number.MAX_SAFE_INTEGER });
    hub.declare(name);
  }

  function addGeneratedItemPackage(name: string, mission: Mission, stacVersion: StacVersion): void {
    const recipe = recipeFor(name, mission, { stacVersion });
    const ready = new Set<number>();
    recipes.set(name, { recipe, count: 1 });
    items.set(name, async () => {
      await ensureChecksums(recipe, ready, 0);
      return itemSync(recipe, 0, Date.parse("2024-04-19T09:55:49.024Z"), `${baseUrl}/api/item/v1/${encodeURIComponent(name)}`);
    });
  }

  if (options.defaultPackages !== false) {
    addDataset("sentinel-2-l2a-sample", { count: 500, mission: "sentinel-2" });
    addDataset("landsat-c2-l2-sample", { count: 200, mission: "landsat", stepMs: 4 * 3_600_000 });
    addDataset("sentinel-2-l2a-1m", { count: 1_000_000, mission: "sentinel-2", stepMs: 60_000 });
    addDataset("sentinel-2-l2a-sample-stac-1.1", { count: 100, mission: "sentinel-2", stacVersion: "1.1.0" });
    addLive("sentinel-2-l2a-live", "sentinel-2");
    addLive("landsat-c2-l2-live", "landsat");
    addGeneratedItemPackage("sentinel-2-l2a-example", "sentinel-2", "1.0.0");
    addGeneratedItemPackage("landsat-c2-l2-example", "landsat", "1.0.0");
  }

  // ---- Live subscription Items ---------------------------------------------------------------
  function publishLive(pkg: string, item?: object): number {
    if (item !== undefined) {
      const id = hub.publish(pkg, JSON.stringify(item));
      events.emit("live", { pkg, id });
      return id;
    }
    // Any other package gets generated Sentinel-2 L2A Items from now on.
    if (!live.has(pkg)) addLive(pkg, "sentinel-2");
    const target = live.get(pkg) as LivePackage;
    const index = target.next++;
    const ms = Date.now();
    // Small bodies are hashed synchronously on first use; large ones in the background (the
    // Items published meanwhile carry no file:checksum).
    void ensureChecksums(target.recipe, target.ready, index);
    const id = hub.publish(pkg, itemTextSync(target.recipe, index, ms, selfOf(pkg, index)), index);
    events.emit("live", { pkg, id });
    return id;
  }


  // ---- Publish ---------------------------------------------------------------------------------
  function onAccepted(record: PublishedRecord): void {
    counters.publishAccepted++;
    published.push(record);
    if (published.length > maxStored) published.splice(0, published.length - maxStored);
    if (record.data.type === "Feature") {
      const text = JSON.stringify(record.data);
      if (!generated.has(record.activeParent)) {
        let source = stored.get(record.activeParent);
        if (!source) stored.set(record.activeParent, (source = new StoredSource()));
        const props = (record.data.properties ?? {}) as Record<string, unknown>;
        const when = Date.parse(String(props.datetime ?? props.start_datetime ?? ""));
        source.add(Number.isNaN(when) ? record.receivedAt : when, text);
        if (source.entries.length > maxStored) source.entries.splice(0, source.entries.length - maxStored);
      }
      if (record.subscribable) {
        hub.publish(record.activeParent, text);
        const livePkg = `${record.activeParent}-live`;
        if (live.has(livePkg)) hub.publish(livePkg, text);
      }
    }
    events.emit("published", record);
  }

  const publish = new PublishEndpoint({
    token,
    organisation: options.organisation ?? "sandbox-org",
    heartbeatMs: options.heartbeatMs ?? 25_000,
    heartbeat: options.heartbeat ?? "ping",
    authTimeoutMs: options.authTimeoutMs ?? 10_000,
    faults,
    log,
    onAccepted,
    onRejected: (r) => {
      counters.malformedPublish++;
      rejected.push(r);
      events.emit("rejected", r);
    },
  });

  // ---- HTTP ------------------------------------------------------------------------------------
  function applyRequestFaults(scope: FaultScope, res: ServerResponse): ConnectionFaults | undefined {
    const failure = faults.takeFailure(scope);
    if (failure) {
      const headers: Record<string, string> = failure.retryAfter === undefined ? {} : { "retry-after": String(failure.retryAfter) };
      sendError(res, failure.status, failure.status === 429 ? "Request was throttled." : "Injected server failure.", headers);
      return undefined;
    }
    const connection = faults.forConnection(scope);
    if (connection.stall) {
      faults.injected++;
      return undefined; // keep the socket open, send nothing
    }
    return connection;
  }

  function badRequest(res: ServerResponse, detail: string): void {
    counters.badRequests++;
    sendError(res, 400, detail);
  }

  function notFound(res: ServerResponse, detail = "Not found."): void {
    counters.notFound++;
    sendError(res, 404, detail);
  }

  async function handleSubscription(req: IncomingMessage, res: ServerResponse, url: URL, cf: ConnectionFaults): Promise<void> {
    const pkg = url.searchParams.get("package");
    if (!pkg) return badRequest(res, "the package query parameter is required");
    if (options.strictPackages && !hub.has(pkg)) return notFound(res, `no subscription package "${pkg.slice(0, 80)}"`);
    counters.subscriptionConnections++;
    hub.attach(pkg, req, res, cf);
  }

  function datasetSource(pkg: string): DatasetSource | undefined {
    return generated.get(pkg)?.source ?? stored.get(pkg);
  }

  function datasetItemText(pkg: string, index: number): string | Promise<string> {
    const gen = generated.get(pkg);
    if (gen) {
      const variant = index % Math.max(1, gen.recipe.assetVariants);
      if (gen.ready.has(variant)) return itemTextSync(gen.recipe, index, gen.source.datetimeOf(index), selfOf(pkg, index));
      return ensureChecksums(gen.recipe, gen.ready, index).then(() => itemTextSync(gen.recipe, index, gen.source.datetimeOf(index), selfOf(pkg, index)));
    }
    return (stored.get(pkg) as StoredSource).entries[index].text;
  }

  const stacApi = new StacApi({
    baseUrl: () => baseUrl, faults, itemText: datasetItemText,
    collections: () => firstPerCollection([...generated.values()].map((g) => ({ id: g.recipe.collection, pkg: g.recipe.pkg, source: g.source }))),
  });

  async function handleStream(res: ServerResponse, pkg: string, query: DatasetQuery, cf: ConnectionFaults): Promise<void> {
    const source = datasetSource(pkg) as DatasetSource;
    const [lo, hi] = source.range(query.fromMs, query.toMs);
    const selection = new Selection(lo, hi, query.order);
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" });
    // Headers go out now, even when the first Item waits for a large body's checksum.
    res.flushHeaders();
    const writer = new FaultyWriter(res, cf, () => faults.injected++);
    if (!writer.checkImmediate()) return;
    // Without event-counting faults, Items go out in ~64 KiB writes (fewer chunks, fewer syscalls).
    const batchBytes = writer.countsEvents ? 0 : 64 * 1024;
    let batch = "";
    let batchCount = 0;
    for (let p = 0; p < selection.length; p++) {
      const text = datasetItemText(pkg, selection.indexAt(p));
      const line = typeof text === "string" ? text : await text;
      if (writer.malformedDue() && writer.write('{"type": "Feature", "id": "truncated-by-fault-injection", "properties": {\n', false) === "gone") return;
      batch += cf.sseFraming ? `data: ${line}\n\n${p % 10 === 9 ? ": still here\n\n" : ""}` : `${line}\n`;
      if (batch.length < batchBytes && p + 1 < selection.length) {
        batchCount++;
        continue;
      }
      const result = writer.write(batch, true);
      counters.itemsStreamed += writer.countsEvents ? 1 : batchCount + 1;
      batchCount = 0;
      batch = "";
      if (result === "gone") return;
      if (result === "full") await writer.ready();
      if (res.destroyed) return;
    }
    await writer.end();
  }

  async function handlePaginate(res: ServerResponse, url: URL, pkg: string, query: DatasetQuery, cf: ConnectionFaults): Promise<void> {
    const cursor = url.searchParams.get("cursor");
    let position = 0;
    if (cursor !== null) {
      const decoded = decodeCursor(cursor);
      if (decoded === undefined) return badRequest(res, "cursor is not valid");
      position = decoded;
    }
    const source = datasetSource(pkg) as DatasetSource;
    const [lo, hi] = source.range(query.fromMs, query.toMs);
    const selection = new Selection(lo, hi, query.order);
    const features: unknown[] = [];
    for (let p = position; p < Math.min(selection.length, position + PAGE_SIZE); p++) {
      const text = datasetItemText(pkg, selection.indexAt(p));
      features.push(JSON.parse(typeof text === "string" ? text : await text));
    }
    const at = (pos: number) => {
      const link = new URL(url.pathname + url.search, baseUrl);
      link.searchParams.set("cursor", encodeCursor(pos));
      return link.toString();
    };
    const links: { rel: string; href: string; type: string }[] = [
      { rel: "self", href: new URL(url.pathname + url.search, baseUrl).toString(), type: "application/geo+json" },
    ];
    if (position + PAGE_SIZE < selection.length) links.push({ rel: "next", href: at(position + PAGE_SIZE), type: "application/geo+json" });
    if (position > 0) links.push({ rel: "prev", href: at(Math.max(0, Math.min(position, selection.length) - PAGE_SIZE)), type: "application/geo+json" });
    const body = JSON.stringify({ type: "FeatureCollection", features, links, numberMatched: selection.length, numberReturned: features.length });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    const writer = new FaultyWriter(res, cf, () => faults.injected++);
    if (!writer.checkImmediate()) return;
    if (writer.write(body, false) !== "gone") await writer.end();
  }

  async function handleAsset(req: IncomingMessage, res: ServerResponse, url: URL, rest: string, cf: ConnectionFaults): Promise<void> {
    if (cf.redirectAssetsTo) {
      faults.injected++;
      const target = new URL(url.pathname + url.search, cf.redirectAssetsTo).toString();
      res.writeHead(302, { location: target, "content-length": 0 });
      res.end();
      return;
    }
    let found: { content: AssetContent; type: string } | undefined;
    if (rest.startsWith("custom/")) found = customAssets.get(rest.slice("custom/".length));
    else {
      const parts = rest.split("/");
      const pkg = decodeSegment(parts[0] ?? "");
      const index = Number(parts[1]);
      const key = decodeSegment(parts[2] ?? "");
      const entry = pkg === undefined ? undefined : recipes.get(pkg);
      const recipe = entry?.recipe;
      const count = entry?.count ?? 0;
      if (recipe && key && Number.isInteger(index) && index >= 0 && index < count) {
        const def = assetDefinitions(recipe, index).find((d) => d.key === key);
        if (def) found = { content: def.content, type: def.type };
      }
    }
    if (!found) return notFound(res, "no such asset");
    await serveAsset(req, res, found.content, found.type, cf, () => faults.injected++);
  }

  async function handleStac(res: ServerResponse, path: string): Promise<void> {
    if (path === "/stac/") {
      return sendJson(res, 200, {
        type: "Catalog", stac_version: "1.0.0", id: "datasphere-sandbox", description: "Data Sphere sandbox",
        links: [{ rel: "self", href: `${baseUrl}/stac/`, type: "application/json" }],
      });
    }
    let m = /^\/stac\/collections\/([^/]+)$/.exec(path);
    if (m) {
      const id = decodeSegment(m[1]) ?? "";
      return sendJson(res, 200, {
        type: "Collection", stac_version: "1.0.0", id, description: `Sandbox collection ${id}`, license: "other",
        extent: { spatial: { bbox: [[-180, -90, 180, 90]] }, temporal: { interval: [["2015-06-23T00:00:00Z", null]] } },
        links: [{ rel: "self", href: `${baseUrl}/stac/collections/${encodeURIComponent(id)}`, type: "application/json" }, { rel: "root", href: `${baseUrl}/stac/`, type: "application/json" }],
      });
    }
    m = /^\/stac\/items\/([^/]+)\/(\d+)$/.exec(path);
    if (m) {
      const pkg = decodeSegment(m[1]) ?? "";
      const index = Number(m[2]);
      const gen = generated.get(pkg);
      if (gen && index < gen.source.count) return sendJson(res, 200, await generatedItem(gen, index), { "content-type": "application/geo+json" });
      const event = hub.findByIndex(pkg, index);
      if (event) {
        res.writeHead(200, { "content-type": "application/geo+json", "content-length": Buffer.byteLength(event.data) });
        res.end(event.data);
        return;
      }
    }
    notFound(res);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    counters.requests++;
    const url = new URL(req.url ?? "/", "http://sandbox.invalid");
    const path = url.pathname;
    if (path === STAC_API_PATH || path.startsWith(`${STAC_API_PATH}/`)) return stacApi.handle(req, res, url);
    let scope: FaultScope | undefined;
    let datasetMatch: RegExpExecArray | null = null;
    let itemMatch: RegExpExecArray | null = null;
    if (path === "/subscription/v1/") scope = "subscription";
    else if ((datasetMatch = /^\/api\/dataset\/v1\/([^/]+)\/(stream|paginate)\/$/.exec(path))) scope = "dataset";
    else if ((itemMatch = /^\/api\/item\/v1\/([^/]+)$/.exec(path))) scope = "item";
    else if (path.startsWith("/assets/")) scope = "asset";
    else if (path.startsWith("/stac/")) scope = "item";
    else if (path === "/") {
      return sendJson(res, 200, {
        service: "datasphere-sandbox", apiUrl: baseUrl, publishUrl: publishUrlOf(),
        packages: {
          subscription: hub.packages(), dataset: [...generated.keys(), ...stored.keys()], item: [...items.keys()],
        },
      });
    } else return notFound(res);

    const isAssetGet = scope === "asset" && req.method === "HEAD";
    if (req.method !== "GET" && !isAssetGet) {
      res.setHeader("allow", scope === "asset" ? "GET, HEAD" : "GET");
      return sendError(res, 405, `Method "${req.method}" not allowed.`);
    }
    if (scope !== "asset" || requireAssetAuth) {
      const verdict = authorise(req, res, token);
      if (verdict === "missing") counters.unauthorized++;
      if (verdict === "invalid") counters.forbidden++;
      if (verdict !== "ok") return;
    }

    if (scope === "dataset" && datasetMatch) {
      counters.datasetRequests++;
      const pkg = decodeSegment(datasetMatch[1]);
      if (pkg === undefined || !datasetSource(pkg)) return notFound(res, "no such dataset package");
      const query = parseDatasetQuery(url.searchParams);
      if (typeof query === "string") return badRequest(res, query);
      const cf = applyRequestFaults("dataset", res);
      if (!cf) return;
      return datasetMatch[2] === "stream" ? handleStream(res, pkg, query, cf) : handlePaginate(res, url, pkg, query, cf);
    }
    if (scope === "item" && itemMatch) {
      counters.itemRequests++;
      const pkg = decodeSegment(itemMatch[1]);
      const make = pkg === undefined ? undefined : items.get(pkg);
      if (!make) return notFound(res, "no such item package");
      const cf = applyRequestFaults("item", res);
      if (!cf) return;
      const body = JSON.stringify(await make());
      res.writeHead(200, { "content-type": "application/geo+json", "content-length": Buffer.byteLength(body) });
      const writer = new FaultyWriter(res, cf, () => faults.injected++);
      if (writer.checkImmediate() && writer.write(body, false) !== "gone") await writer.end();
      return;
    }
    if (scope === "subscription") {
      const cf = applyRequestFaults("subscription", res);
      if (!cf) return;
      return handleSubscription(req, res, url, cf);
    }
    if (scope === "asset") {
      counters.assetRequests++;
      const cf = applyRequestFaults("asset", res);
      if (!cf) return;
      return handleAsset(req, res, url, path.slice("/assets/".length), cf);
    }
    return handleStac(res, path);
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      log(`internal error on ${req.method} ${req.url}: ${(error as Error)?.stack ?? String(error)}`);
      if (!res.headersSent) sendError(res, 500, "Internal server error.");
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  server.on("connection", (socket: Socket) => {
    counters.connections++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.on("upgrade", (req, socket, head) => publish.handleUpgrade(req, socket, head));
  server.on("clientError", (_error, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
  baseUrl = (options.publicUrl ?? `http://${urlHost}:${port}`).replace(/\/+$/, "");
  const publishUrlOf = () => `${baseUrl.replace(/^http/, "ws")}/publish/v1/`;

  const rate = options.rate ?? 0;
  if (rate > 0) {
    const period = Math.max(20, 1000 / rate);
    for (const pkg of live.keys()) {
      let due = 0;
      const timer = setInterval(() => {
        due += (rate * period) / 1000;
        while (due >= 1) {
          due -= 1;
          publishLive(pkg);
        }
      }, period);
      timer.unref();
      timers.push(timer);
    }
  }

  let closing: Promise<void> | undefined;
  const sandbox: Sandbox = {
    url: baseUrl,
    apiUrl: baseUrl,
    publishUrl: publishUrlOf(),
    token,
    port,
    faults,
    published,
    rejected,
    events,
    stacApi,
    get stats(): SandboxStats {
      return {
        ...counters,
        publishConnections: publish.connectionsOpened,
        eventsSent: hub.eventsSent,
        faultsInjected: faults.injected,
      };
    },
    addDataset,
    addAsset(path, body, type = "application/octet-stream") {
      const clean = path.replace(/^\/+/, "");
      const content: AssetContent = typeof body === "number"
        ? { id: `${seed}/custom/${clean}`, size: body, algorithm: "sha2-256" }
        : { id: `${seed}/custom/${clean}`, size: Buffer.byteLength(body), algorithm: "sha2-256", body: typeof body === "string" ? Buffer.from(body) : body };
      customAssets.set(clean, { content, type });
      return { href: `${baseUrl}/assets/custom/${clean}`, size: content.size, checksum: checksums.get(content) ?? "", type };
    },
    addItem(name, item) {
      recipes.delete(name);
      items.set(name, async () => item as Record<string, unknown>);
    },
    publishLive,
    async datasetItem(pkg, index) {
      const gen = generated.get(pkg);
      if (!gen) throw new Error(`"${pkg}" is not a generated dataset package`);
      return generatedItem(gen, index);
    },
    liveSubscriberCount: (pkg) => hub.subscriberCount(pkg),
    openSockets: () => [...sockets].filter((s) => !s.destroyed).length,
    waitForPublished(count, timeoutMs = 10_000) {
      if (counters.publishAccepted >= count) return Promise.resolve(published.slice());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          events.off("published", check);
          reject(new Error(`timed out waiting for ${count} published messages (have ${counters.publishAccepted})`));
        }, timeoutMs);
        const check = () => {
          if (counters.publishAccepted < count) return;
          clearTimeout(timer);
          events.off("published", check);
          resolve(published.slice());
        };
        events.on("published", check);
      });
    },
    close() {
      closing ??= (async () => {
        for (const timer of timers) clearInterval(timer);
        hub.closeAll();
        publish.close();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const socket of sockets) socket.destroy();
        server.closeAllConnections();
        await closed;
      })();
      return closing;
    },
  };
  return sandbox;
}
