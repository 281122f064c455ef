import type { Node, NodeAPI } from "./node-red";

const ENV_REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/**
 * Substitutes `${VAR}` references (Node-RED does this for node properties, not for credentials).
 * Flow and group env vars win over the process environment, as in Node-RED itself.
 */
export function resolveEnv(RED: NodeAPI, node: Node | null, value: string | undefined): string {
  if (!value) return "";
  return value.replace(ENV_REFERENCE, (_whole, name: string) => {
    const fromFlow = RED.util.getSetting ? RED.util.getSetting(node as Node, name) : undefined;
    return fromFlow ?? process.env[name] ?? "";
  });
}
