import type { Auth } from "../../core/auth";
import type { AuthMode, Endpoints } from "../../core/endpoints";
import type { Publisher } from "../../core/publisher";
import type { Closable, Lease } from "../../core/shared-resource";
import type { Node } from "./node-red";

/** What the other nodes see of a `datasphere-config` node. */
export interface DatasphereConfigNode extends Node<{ token?: string }> {
  /** Undefined when the configuration is invalid; `configError` then says why. */
  readonly endpoints?: Endpoints;
  readonly auth?: Auth;
  readonly authMode: AuthMode;
  readonly configError?: string;
  /** Users of this config node (for status fan-out and tests). */
  readonly users: ReadonlySet<Node>;
  register(user: Node): void;
  deregister(user: Node): void;
  /** A connection owned by this config node and shared by key, reference counted per user. */
  acquireShared<T extends Closable>(key: string, user: object, create: () => T): Promise<Lease<T>>;
  /** The publish connection this config node owns (shared by its publish nodes, with its socket settings). */
  publisher(user: object, legacyHeartbeatTimeout?: unknown): Promise<Lease<Publisher>>;
  /** Removes the token (and only it) from a text built from outside data. */
  redact(text: string): string;
}

/** A config node whose endpoints and token are valid. */
export type UsableConfig = DatasphereConfigNode & { endpoints: Endpoints; auth: Auth };

export function isUsableConfig(config: DatasphereConfigNode | null | undefined): config is UsableConfig {
  return !!config && !!config.endpoints && !!config.auth;
}
