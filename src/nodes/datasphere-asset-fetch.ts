import { setMaxListeners } from "node:events";
import { resolve as resolvePath } from "node:path";
import { checkLayout, DEFAULT_LAYOUT, DEFAULT_MAX_BYTES_WITHOUT_SIZE, fetchItemAssets, TransferPool, type AssetEvent, type ExistingPolicy, type FetchOutcome, type NamingMode, type SelectBy } from "../core/assets";
import { DatasphereError } from "../core/errors";
import { defineNode, type ConfiguredKit, type NodeDefWithServer } from "./shared/define-node";
import type { NodeAPI, NodeMessage, SendFunction } from "./shared/node-red";
import { formatRate, RateMeter } from "./shared/rate-meter";
import { oneOf } from "./shared/settings";

const TYPE = "datasphere-asset-fetch";

interface AssetFetchDef extends NodeDefWithServer {
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
  missingKeys?: string;
  includeArchives?: boolean;
  unverifiable?: string;
  maxSizeMb?: number | string;
}

function list(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String).map((v) => v.trim()).filter((v) => v !== "");
  return typeof value === "string" ? value.split(",").map((v) => v.trim()).filter((v) => v !== "") : [];
}

function start(kit: ConfiguredKit<AssetFetchDef>) {
  const { RED, def, config, status, t, env } = kit;
  const selectBy = oneOf<SelectBy>(env(def.selectBy), ["keys", "roles", "types"], "keys");
  const layout = def.layout === undefined ? DEFAULT_LAYOUT : env(def.layout);
  const naming = oneOf<NamingMode>(env(def.naming), ["local-path", "key"], "local-path");
  const existing = oneOf<ExistingPolicy>(env(def.existing), ["skip-if-valid", "overwrite", "fail"], "skip-if-valid");
  const pool = new TransferPool(kit.numbers.integer("concurrency", 4), kit.numbers.integer("perHost", 2));
  const idleTimeoutMs = kit.numbers.integer("idleTimeout", 30) * 1000;
  const retries = kit.numbers.integer("retries", 5, 0);
  const failFast = def.failFast === true;
  const progress = def.progress === true;
  const fsync = def.fsync === true;
  const tokenHosts = list(env(def.tokenHosts)).map((h) => (/^https?:\/\//.test(h) ? h : `https://${h}`));
  const auth = tokenHosts.length > 0 ? config.auth.withExtraOrigins(tokenHosts) : config.auth;
  const layoutProblem = checkLayout(layout);
  const missingKeys = oneOf<"skip" | "error">(env(def.missingKeys), ["skip", "error"], "skip");
  const unverifiableChecksum = oneOf<"error" | "keep">(env(def.unverifiable), ["error", "keep"], "error");
  const includeArchives = def.includeArchives === true;
  const maxBytesWithoutSize = kit.numbers.integer("maxSizeMb", DEFAULT_MAX_BYTES_WITHOUT_SIZE / 2 ** 20) * 2 ** 20;

  const closing = new AbortController();
  setMaxListeners(0, closing.signal);
  const running = new Set<Promise<void>>();
  const activePaths = new Set<string>();
  const meter = new RateMeter();
  let activeTransfers = 0;

  if (layoutProblem) status.set({ fill: "red", shape: "ring", text: t("status.badLayout") });
  else status.set({ fill: "grey", shape: "ring", text: t("status.idle") });

  function showActivity(bytesPerSecond: number): void {
    if (activeTransfers > 0) status.progress({ fill: "green", shape: "dot", text: t("status.active", { count: activeTransfers, rate: formatRate(bytesPerSecond) }) });
  }

  function onEvent(event: AssetEvent, msg: NodeMessage, send: SendFunction): void {
    if (event.event === "start") {
      activeTransfers += 1;
      if (!meter.running) meter.start(showActivity);
      showActivity(0);
    } else if (event.event === "finish" || event.event === "stopped" || (event.event === "error" && event.started)) {
      activeTransfers = Math.max(0, activeTransfers - 1);
    }
    if (event.event !== "start" && activeTransfers === 0) meter.stop();
    if (progress) {
      const payload = event.event === "error" ? { ...event, message: kit.redact(event.message) } : event.event === "start" ? { ...event, href: kit.redact(event.href) } : event;
      send([null, { topic: event.itemId, payload, parentId: msg._msgid }]);
    }
  }

  async function handle(msg: NodeMessage, send: SendFunction): Promise<void> {
    if (layoutProblem) throw new DatasphereError("INVALID_CONFIG", t("errors.badLayout", { problem: layoutProblem }));
    let item: unknown = msg.payload;
    if (typeof item === "string") {
      try {
        item = JSON.parse(item);
      } catch {
        throw new DatasphereError("INVALID_STAC", t("errors.notJson"));
      }
    }
    let directory: string;
    try {
      const value = await kit.evaluate(def.directory ?? "", def.directoryType || "str", msg);
      directory = value === undefined || value === null ? "" : String(value);
    } catch (error) {
      throw new DatasphereError("INVALID_CONFIG", t("errors.directory", { reason: (error as Error).message }));
    }
    if (!directory) throw new DatasphereError("INVALID_CONFIG", t("errors.noDirectory"));
    let outcome: FetchOutcome;
    try {
      outcome = await fetchItemAssets(item, {
        root: resolvePath(typeof RED.settings.userDir === "string" ? RED.settings.userDir : process.cwd(), directory),
        selectBy: msg.assets !== undefined ? "keys" : selectBy,
        keys: msg.assets !== undefined ? list(msg.assets) : list(env(def.assets)),
        roles: list(env(def.roles)),
        mediaTypes: list(env(def.mediaTypes)),
        layout,
        naming,
        existing,
        missingKeys,
        unverifiableChecksum,
        includeArchives,
        maxBytesWithoutSize,
        pool,
        idleTimeoutMs,
        retries,
        fsync,
        failFast,
        activePaths,
        signal: closing.signal,
        auth,
        onBytes: (n) => meter.add(n),
        onEvent: (event) => onEvent(event, msg, send),
      });
    } catch (error) {
      if (closing.signal.aborted) return;
      const err = kit.failure(error, "asset-fetch");
      status.set({ fill: "red", shape: "ring", text: t("status.error", { code: err.code }) });
      throw err;
    }
    if (closing.signal.aborted) return;
    // Per-asset errors ride on the message: on the output (keep-going) and in a Catch node's copy.
    const errors = outcome.errors.map((e) => ({ code: e.code, message: kit.redact(e.message), ...(e.details ?? {}) }));
    if (errors.length > 0) msg.errors = errors;
    // Requested keys this Item does not have (documented): always an array, empty when none.
    msg.skipped = outcome.plan.skipped;
    if (errors.length === 0 || (!failFast && outcome.files.length > 0)) {
      msg.payload = outcome.item;
      msg.files = outcome.files;
      send([msg, null]);
    }
    if (errors.length === 0 && outcome.plan.selected === 0) {
      const skipped = outcome.plan.skipped.length > 0 ? t("warnings.skipped", { keys: outcome.plan.skipped.join(", ") }) : "";
      kit.node.warn(kit.redact(t("warnings.nothingSelected", { item: outcome.plan.itemId, rule: t(`rule.${outcome.plan.rule}`), skipped })));
      if (activeTransfers === 0) status.set({ fill: "yellow", shape: "ring", text: t("status.nothingSelected") });
      return;
    }
    if (errors.length === 0) {
      if (activeTransfers === 0) status.set({ fill: "grey", shape: "dot", text: t("status.done", { count: outcome.files.length }) });
      return;
    }
    status.set({ fill: "red", shape: "ring", text: t("status.failed", { count: errors.length }) });
    const message = errors.length === 1 ? outcome.errors[0].message : `${errors.length} assets failed: ${outcome.errors.map((e) => e.message).join("; ")}`;
    throw new DatasphereError(outcome.errors[0].code, kit.redact(message), { details: { itemId: outcome.plan.itemId, errors } });
  }

  return {
    input: (msg: NodeMessage, send: SendFunction) => {
      const task = handle(msg, send);
      running.add(task);
      return task.finally(() => running.delete(task));
    },
    close: async () => {
      closing.abort();
      meter.stop();
      await Promise.allSettled([...running]);
    },
  };
}

export = function register(RED: NodeAPI): void {
  defineNode<AssetFetchDef>(RED, TYPE, { start });
};
