import { parseArgs } from "node:util";
import { startSandbox, PACKAGES, type FaultScope, type FaultSpec } from "./index";

const SCOPES = new Set(["subscription", "dataset", "item", "asset", "publish", "stac-search", "all"]);

function parseFaults(text: string): [FaultScope | "all", FaultSpec][] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error("--faults is not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("--faults must be a JSON object of scope -> faults");
  return Object.entries(value as Record<string, unknown>).map(([scope, spec]) => {
    if (!SCOPES.has(scope)) throw new Error(`--faults: unknown scope "${scope}"`);
    if (typeof spec !== "object" || spec === null) throw new Error(`--faults: faults of "${scope}" must be an object`);
    return [scope as FaultScope | "all", spec as FaultSpec];
  });
}

/** `datasphere-sandbox`: runs the local Data Sphere server until Ctrl-C / SIGTERM. */
const USAGE = `Usage: datasphere-sandbox [options]

  --port <n>           TCP port (default 8787; 0 = any free port)
  --host <addr>        interface (default 127.0.0.1)
  --token <t>          the API token clients must send (default sandbox-token)
  --rate <n>           live Items per second per live package (default 1; 0 = off)
  --seed <n>           seed of all generated data (default 1)
  --heartbeat-ms <n>   publish socket heartbeat period (default 25000)
  --keep-alive-ms <n>  subscription keep-alive comment period (default 15000)
  --asset-size <n>     bytes of each generated band asset (default 65536)
  --faults <json>      faults to inject, by scope, e.g. '{"subscription":{"dropAfterEvents":5}}'
                       (scopes: subscription, dataset, item, asset, publish, all; see docs/sandbox.md)
  --quiet              do not log publish messages
  -h, --help           this text`;

function num(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) {
    process.stderr.write(`datasphere-sandbox: --${name} must be a non-negative number, not "${value}"\n`);
    process.exit(2);
  }
  return n;
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        port: { type: "string" }, host: { type: "string" }, token: { type: "string" }, rate: { type: "string" },
        seed: { type: "string" }, "heartbeat-ms": { type: "string" }, "keep-alive-ms": { type: "string" },
        "asset-size": { type: "string" }, faults: { type: "string" }, quiet: { type: "boolean" }, help: { type: "boolean", short: "h" },
      },
      strict: true,
    }));
  } catch (error) {
    process.stderr.write(`datasphere-sandbox: ${(error as Error).message}\n\n${USAGE}\n`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const quiet = values.quiet === true;
  let faults: [FaultScope | "all", FaultSpec][] = [];
  try {
    faults = values.faults ? parseFaults(values.faults) : [];
  } catch (error) {
    process.stderr.write(`datasphere-sandbox: ${(error as Error).message}\n`);
    process.exit(2);
  }
  const sandbox = await startSandbox({
    port: num(values.port, "port", 8787),
    host: values.host ?? "127.0.0.1",
    token: values.token ?? "sandbox-token",
    rate: num(values.rate, "rate", 1),
    seed: num(values.seed, "seed", 1),
    heartbeatMs: num(values["heartbeat-ms"], "heartbeat-ms", 25_000),
    keepAliveMs: num(values["keep-alive-ms"], "keep-alive-ms", 15_000),
    assetSize: num(values["asset-size"], "asset-size", 64 * 1024),
    log: quiet ? undefined : (line) => process.stdout.write(`${new Date().toISOString()} ${line}\n`),
  });
  for (const [scope, spec] of faults) sandbox.faults.update(spec, scope);
  if (!quiet) {
    sandbox.events.on("published", (r) => process.stdout.write(`${new Date().toISOString()} publish: ${String(r.data.type)} ${String(r.data.id)} under ${r.activeParent} (subscribable: ${r.subscribable})\n`));
  }
  const lines = [
    "Data Sphere sandbox running.",
    "",
    `  API URL:      ${sandbox.apiUrl}`,
    `  Publish URL:  ${sandbox.publishUrl}`,
    `  Token:        ${sandbox.token}`,
    "",
    "  Subscription: " + PACKAGES.subscription.join(", ") + " (and any active_parent you publish under)",
    "  Dataset:      " + Object.keys(PACKAGES.dataset).join(", "),
    "  Item:         " + PACKAGES.item.join(", "),
    "",
    "Config node: set these (or put them in the datasphere-config node):",
    `  export DATASPHERE_API_URL=${sandbox.apiUrl} DATASPHERE_PUBLISH_URL=${sandbox.publishUrl} DATASPHERE_TOKEN=${sandbox.token}`,
    "",
    ...(faults.length ? [`Faults: ${values.faults}`, ""] : []),
    "Ctrl-C stops it.",
  ];
  process.stdout.write(`${lines.join("\n")}\n`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`\n${signal}: stopping the sandbox...\n`);
    const force = setTimeout(() => process.exit(1), 5_000);
    force.unref();
    sandbox.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
}

main().catch((error: unknown) => {
  process.stderr.write(`datasphere-sandbox: ${(error as Error)?.message ?? String(error)}\n`);
  process.exit(1);
});
