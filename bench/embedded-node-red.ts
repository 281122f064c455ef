import { writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { join, resolve } from "node:path";

export interface EmbeddedNodeRedOptions {
  userDir: string;
  flows: unknown[];
  /** Token of the flow's `cfg` config node. */
  token: string;
  /** Folders of node files to load (the bench's own nodes and this package's nodes/). */
  nodesDir: string[];
}

/**
 * Node-RED embedded in the bench process (no editor, no HTTP routes), running the given flow: the
 * benches measure a real runtime without the test helper's spies, which record every call.
 */
export async function startEmbeddedNodeRed(options: EmbeddedNodeRedOptions): Promise<{ stop(): Promise<void> }> {
  writeFileSync(join(options.userDir, "flows.json"), JSON.stringify(options.flows));
  writeFileSync(join(options.userDir, "flows_cred.json"), JSON.stringify({ cfg: { token: options.token } }));
  const RED = require(process.env.NODE_RED_PATH ? resolve(process.env.NODE_RED_PATH) : require.resolve("node-red"));
  RED.init(createServer(), {
    userDir: options.userDir,
    flowFile: "flows.json",
    credentialSecret: false,
    nodesDir: options.nodesDir,
    httpAdminRoot: false,
    httpNodeRoot: false,
    editorTheme: { tours: false, projects: { enabled: false } },
    telemetry: { enabled: false, updateNotification: false },
    logging: { console: { level: "error", metrics: false, audit: false } },
  });
  await RED.start();
  return { stop: () => RED.stop() };
}
