import type { StacApiClient } from "../../core/stac-search";
import type { Node } from "./node-red";

/** What the other nodes see of a `datasphere-stac-api` config node. */
export interface StacApiConfigNode extends Node<{ token?: string }> {
  /** Undefined when the configuration is invalid; `configError` then says why. */
  readonly client?: StacApiClient;
  readonly configError?: string;
  readonly users: ReadonlySet<Node>;
  register(user: Node): void;
  deregister(user: Node): void;
  /** Removes the secret (and only it) from a text built from outside data. */
  redact(text: string): string;
}

export function isUsableStacApi(config: unknown): config is StacApiConfigNode & { client: StacApiClient } {
  return !!config && typeof config === "object" && !!(config as StacApiConfigNode).client;
}
