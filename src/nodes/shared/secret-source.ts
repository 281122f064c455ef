import { resolveEnv } from "./env";
import type { Node, NodeAPI } from "./node-red";

// The smallest equivalent of datasphere-config's token source (tokenSource "credential" | "env",
// tokenEnv): wip/i16 writes the shared one; when it lands this file gives way to it.

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface SecretSourceSettings {
  tokenSource?: unknown;
  tokenEnv?: unknown;
  /** The node's credential (which may itself be `${VAR}`). */
  credential?: string;
  /** The variable read when tokenSource is "env" and tokenEnv is empty. */
  defaultEnv: string;
}

/** The secret, read once at deploy; `problem` names what is missing (a variable name, never a value). */
export function resolveToken(RED: NodeAPI, node: Node | null, settings: SecretSourceSettings): { token: string; problem?: string } {
  if (settings.tokenSource !== "env") {
    const token = resolveEnv(RED, node, settings.credential);
    return { token, problem: token ? undefined : "no secret in the credential" };
  }
  const name = typeof settings.tokenEnv === "string" && settings.tokenEnv.trim() !== "" ? settings.tokenEnv.trim() : settings.defaultEnv;
  if (!ENV_NAME.test(name)) return { token: "", problem: `"${name.slice(0, 60)}" is not an environment variable name` };
  const token = (RED.util.getSetting?.(node, name) ?? process.env[name] ?? "").trim();
  return { token, problem: token ? undefined : `environment variable ${name} is not set or empty` };
}
