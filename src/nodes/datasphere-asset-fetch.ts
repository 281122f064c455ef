import { setMaxListeners } from "node:events";
import { resolve as resolvePath } from "node:path";
import { checkLayout, DEFAULT_LAYOUT, fetchItemAssets, TransferPool, type AssetEvent, type ExistingPolicy, type FetchOutcome, type NamingMode, type SelectBy } from "../core/assets";
import { DatasphereError, toDatasphereError } from "../core/errors";
import { isUsableConfig, type DatasphereConfigNode } from "./shared/config-node";
import { resolveEnv } from "./shared/env";
import type { DoneFunction, Node, NodeAPI, NodeDef, NodeMessage, SendFunction } from "./shared/node-red";
import { STATUS_INTERVAL_MS, ThrottledStatus } from "./shared/status";
import { numberOr, oneOf, positiveInt } from "./shared/settings";

const TYPE = "datasphere-asset-fetch";

interface AssetFetchDef extends NodeDef {
  server?: string;
  assets?: string;
  selectBy?: string;
  roles?: string;
  mediaTypes?: string;
  directory?: string;
  directoryType?: string;
  layout?: string;
  naming?: string;
  existing?: string;
  concurrency?: number | string;
  perHost?: number | string;
  idleTimeout?: number | string;
  retries?: number | string;
  failFast?: boolean;
  progress?: boolean;
  fsync?: boolean;
  tokenHosts?: string;
}

function list(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String).map((v) => v.trim()).filter((v) => v !== "");
  return typeof value === "string" ? value.split(",").map((v) => v.trim()).filter((v) => v !== "") : [];
}

export = function register(RED: NodeAPI): void {
  function DatasphereAssetFetch(this: Node, def: AssetFetchDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    const config = RED.nodes.getNode(def.server ?? "") as DatasphereConfigNode | null;
    const env = (v: string | undefined) => resolveEnv(RED, node, v);
    const selectBy = oneOf<SelectBy>(env(def.selectBy), ["keys", "roles", "types"], "keys");
    const layout = def.layout === undefined ? DEFAULT_LAYOUT : env(def.layout);
    const naming = oneOf<NamingMode>(env(def.naming), ["local-path", "key"], "local-path");
    const existing = oneOf<ExistingPolicy>(env(def.existing), ["skip-if-valid", "overwrite", "fail"], "skip-if-valid");
    const pool = new TransferPool(positiveInt(env(String(def.concurrency ?? "")), 4), positiveInt(env(String(def.perHost ?? "")), 2));
    const idleTimeoutMs = positiveInt(env(String(def.idleTimeout ?? "")), 30) * 1000;
    const retries = Math.floor(numberOr(env(String(def.retries ?? "")), 5, 0));
    const failFast = def.failFast === true;
    const progress = def.progress === true;
    const fsync = def.fsync === true;
    const tokenHosts = list(env(def.tokenHosts)).map((h) => (/^https?:\/\//.test(h) ? h : `https://${h}`));
    const layoutProblem = checkLayout(layout);

    const status = new ThrottledStatus(node);
    const closing = new AbortController();
    setMaxListeners(0, closing.signal);
    const running = new Set<Promise<void>>();
    const activePaths = new Set<string>();
    let activeTransfers = 0;
    let bytesSinceTick = 0;
    let lastTick = Date.now();
    let rateTimer: NodeJS.Timeout | undefined;

    const usable = isUsableConfig(config);
    if (usable) config.register(node);
    if (!usable) status.set({ fill: "red", shape: "ring", text: RED._(`${TYPE}.status.noConfig`) });
    else if (layoutProblem) status.set({ fill: "red", shape: "ring", text: RED._(`${TYPE}.status.badLayout`) });
    else status.set({ fill: "grey", shape: "ring", text: RED._(`${TYPE}.status.idle`) });

    const redact = (text: string) => (config ? config.redact(text) : text);

    function showActivity(): void {
      const now = Date.now();
      const seconds = Math.max(0.001, (now - lastTick) / 1000);
      const rate = formatRate(bytesSinceTick / seconds);
      bytesSinceTick = 0;
      lastTick = now;
      if (activeTransfers > 0) status.progress({ fill: "green", shape: "dot", text: RED._(`${TYPE}.status.active`, { count: activeTransfers, rate }) });
    }

    function onEvent(event: AssetEvent, msg: NodeMessage, send: SendFunction): void {
      if (event.event === "start") {
        activeTransfers += 1;
        if (!rateTimer) {
          lastTick = Date.now();
          rateTimer = setInterval(showActivity, STATUS_INTERVAL_MS);
        }
        showActivity();
      } else if (event.event === "finish" || event.event === "stopped" || (event.event === "error" && event.started)) {
        activeTransfers = Math.max(0, activeTransfers - 1);
      }
      if (event.event !== "start" && activeTransfers === 0 && rateTimer) {
        clearInterval(rateTimer);
        rateTimer = undefined;
      }
      if (progress) {
        const payload = event.event === "error" ? { ...event, message: redact(event.message) } : event.event === "start" ? { ...event, href: redact(event.href) } : event;
        send([null, { topic: event.itemId, payload, parentId: msg._msgid }]);
      }
    }

    node.on("input", (msg: NodeMessage, send: SendFunction, done: DoneFunction) => {
      const task = handle(msg, send, done);
      running.add(task);
      void task.finally(() => running.delete(task));
    });

    async function handle(msg: NodeMessage, send: SendFunction, done: DoneFunction): Promise<void> {
      if (!isUsableConfig(config)) return done(new DatasphereError("INVALID_CONFIG", RED._(`${TYPE}.errors.noConfig`)));
      if (layoutProblem) return done(new DatasphereError("INVALID_CONFIG", RED._(`${TYPE}.errors.badLayout`, { problem: layoutProblem })));
      let item: unknown = msg.payload;
      if (typeof item === "string") {
        try {
          item = JSON.parse(item);
        } catch {
          return done(new DatasphereError("INVALID_STAC", RED._(`${TYPE}.errors.notJson`)));
        }
      }
      let directory: string;
      try {
        directory = await evaluateDirectory(msg);
      } catch (error) {
        return done(new DatasphereError("INVALID_CONFIG", RED._(`${TYPE}.errors.directory`, { reason: (error as Error).message })));
      }
      if (!directory) return done(new DatasphereError("INVALID_CONFIG", RED._(`${TYPE}.errors.noDirectory`)));
      const keys = msg.assets !== undefined ? list(msg.assets) : list(env(def.assets));
      const auth = tokenHosts.length > 0 ? config.auth.withExtraOrigins(tokenHosts) : config.auth;
      let outcome: FetchOutcome;
      try {
        outcome = await fetchItemAssets(item, {
          root: resolvePath(typeof RED.settings.userDir === "string" ? RED.settings.userDir : process.cwd(), directory),
          selectBy: msg.assets !== undefined ? "keys" : selectBy,
          keys,
          roles: list(env(def.roles)),
          mediaTypes: list(env(def.mediaTypes)),
          layout,
          naming,
          existing,
          pool,
          idleTimeoutMs,
          retries,
          fsync,
          failFast,
          activePaths,
          signal: closing.signal,
          headersFor: (url) => auth.headersFor(url),
          onBytes: (n) => {
            bytesSinceTick += n;
          },
          onEvent: (event) => onEvent(event, msg, send),
        });
      } catch (error) {
        if (closing.signal.aborted) return done();
        const err = toDatasphereError(error, "asset-fetch");
        status.set({ fill: "red", shape: "ring", text: RED._(`${TYPE}.status.error`, { code: err.code }) });
        return done(Object.assign(new DatasphereError(err.code, redact(err.message)), { details: err.details }));
      }
      if (closing.signal.aborted) return done();
      const errors = outcome.errors;
      // Per-asset errors ride on the message: on the output (keep-going) and in a Catch node's copy.
      if (errors.length > 0) msg.errors = errors.map((e) => ({ code: e.code, message: redact(e.message), ...(e.details ?? {}) }));
      if (errors.length === 0 || (!failFast && outcome.files.length > 0)) {
        msg.payload = outcome.item;
        msg.files = outcome.files;
        send([msg, null]);
      }
      if (errors.length === 0) {
        if (activeTransfers === 0) status.set({ fill: "grey", shape: "dot", text: RED._(`${TYPE}.status.done`, { count: outcome.files.length }) });
        return done();
      }
      status.set({ fill: "red", shape: "ring", text: RED._(`${TYPE}.status.failed`, { count: errors.length }) });
      const message = errors.length === 1 ? errors[0].message : `${errors.length} assets failed: ${errors.map((e) => e.message).join("; ")}`;
      const error = new DatasphereError(errors[0].code, redact(message), {
        details: { itemId: outcome.plan.itemId, errors: errors.map((e) => ({ code: e.code, message: redact(e.message), ...(e.details ?? {}) })) },
      });
      done(error);
    }

    function evaluateDirectory(msg: NodeMessage): Promise<string> {
      const type = def.directoryType || "str";
      if (type === "str") return Promise.resolve(env(def.directory));
      return new Promise((resolve, reject) => {
        RED.util.evaluateNodeProperty(def.directory ?? "", type, node, msg, (err, value) => {
          if (err) reject(err);
          else resolve(value === undefined || value === null ? "" : String(value));
        });
      });
    }

    node.on("close", (_removed: boolean, done: () => void) => {
      closing.abort();
      if (rateTimer) clearInterval(rateTimer);
      rateTimer = undefined;
      const settled = Promise.allSettled([...running]);
      const deadline = new Promise((r) => setTimeout(r, 10_000).unref());
      void Promise.race([settled, deadline]).then(() => {
        status.stop();
        if (usable) config.deregister(node);
        done();
      });
    });
  }

  RED.nodes.registerType(TYPE, DatasphereAssetFetch);
};

function formatRate(bytesPerSecond: number): string {
  if (bytesPerSecond >= 1024 * 1024) return `${(bytesPerSecond / (1024 * 1024)).toFixed(1)} MB/s`;
  if (bytesPerSecond >= 1024) return `${(bytesPerSecond / 1024).toFixed(0)} kB/s`;
  return `${Math.round(bytesPerSecond)} B/s`;
}
