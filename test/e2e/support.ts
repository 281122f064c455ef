import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "../helpers/paths";

export const PACKAGE_NAME = "@stacflow/node-red-datasphere";

/** A fresh, empty Node-RED user directory under the OS temp dir. */
export function freshUserDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `nr-${label}-`));
}

/** Makes this checkout visible to Node-RED as an installed module (<userDir>/node_modules/@stacflow/...). */
export function linkCheckout(userDir: string): void {
  mkdirSync(join(userDir, "node_modules", "@stacflow"), { recursive: true });
  symlinkSync(repoRoot, join(userDir, "node_modules", PACKAGE_NAME), "dir");
}

export function removeDir(dir: string | undefined): void {
  if (dir) rmSync(dir, { recursive: true, force: true });
}

export interface NodeSetInfo {
  id: string;
  name: string;
  types: string[];
  enabled: boolean;
  local?: boolean;
  module: string;
  version?: string;
  err?: unknown;
}

/** A node set's load error as text (Node-RED gives a string or an error-like object). */
export function errText(err: unknown): string {
  if (typeof err === "string") return err;
  const e = err as { message?: string; code?: string } | undefined;
  if (e?.message) return `${e.code ? e.code + ": " : ""}${e.message.split("\n")[0]}`;
  return e?.code ?? JSON.stringify(err);
}

/** GET /nodes as JSON (the admin API's node-set list). */
export async function nodeSets(baseUrl: string, headers: Record<string, string> = {}): Promise<NodeSetInfo[]> {
  const response = await fetch(new URL("nodes", baseUrl), { headers: { Accept: "application/json", ...headers } });
  if (response.status !== 200) throw new Error(`GET /nodes answered ${response.status}`);
  return (await response.json()) as NodeSetInfo[];
}
