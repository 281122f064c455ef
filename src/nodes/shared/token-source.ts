import { resolveEnv } from "./env";
import type { Node, NodeAPI } from "./node-red";

/**
 * Where a config node's token comes from: its Node-RED credential (typed in the dialog, never
 * exported), or an environment variable named in the flow (the name travels with an exported flow,
 * the value stays in the environment of each Node-RED that runs it).
 */
export type TokenSource = "credential" | "env";

export const TOKEN_SOURCES: readonly TokenSource[] = ["credential", "env"];
export const DEFAULT_TOKEN_ENV = "DATASPHERE_TOKEN";
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface TokenSourceSettings {
  /** The editor property `tokenSource`; anything but "env" means the credential. */
  tokenSource?: unknown;
  /** The editor property `tokenEnv`: the variable's name, not its value. */
  tokenEnv?: unknown;
  /** The node's credential (which may itself be `${VAR}`). */
  credential?: string;
}

export interface ResolvedToken {
  source: TokenSource;
  /** The token, or "" when there is none. */
  token: string;
  /** For source "env": the variable read. */
  envName?: string;
  /** Why there is no usable token (names the variable, never a value); undefined when there is one. */
  problem?: string;
}

export function tokenSourceOf(value: unknown): TokenSource {
  return value === "env" ? "env" : "credential";
}

export function isValidEnvName(name: string): boolean {
  return ENV_NAME.test(name);
}

/**
 * The token a config node uses, read once at deploy. For "env", the variable is looked up as Node-RED
 * looks up `${VAR}` (global env from settings, then the process environment).
 */
export function resolveToken(RED: NodeAPI, node: Node | null, settings: TokenSourceSettings): ResolvedToken {
  const source = tokenSourceOf(settings.tokenSource);
  if (source === "credential") {
    const token = resolveEnv(RED, node, settings.credential);
    return { source, token, problem: token ? undefined : "no token in the credential" };
  }
  const envName = typeof settings.tokenEnv === "string" && settings.tokenEnv.trim() !== "" ? settings.tokenEnv.trim() : DEFAULT_TOKEN_ENV;
  if (!isValidEnvName(envName)) {
    return { source, token: "", envName, problem: `"${envName}" is not an environment variable name (letters, digits and _, not starting with a digit)` };
  }
  const fromSettings = RED.util.getSetting ? RED.util.getSetting(node as Node, envName) : undefined;
  const token = (fromSettings ?? process.env[envName] ?? "").trim();
  return { source, token, envName, problem: token ? undefined : `environment variable ${envName} is not set or empty` };
}
