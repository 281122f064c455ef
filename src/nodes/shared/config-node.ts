import type { Auth } from "../../core/auth";
import type { AuthMode, Endpoints } from "../../core/endpoints";
import type { PublisherStatus } from "../../core/publisher";
import type { Node } from "./node-red";
import type { PublishConnection } from "./publisher-connection";
import type { TokenSource } from "./token-source";

/** How a user node hears the state of the config node's connection (mapped to its own status text). */
export type ConnectionListener = (status: PublisherStatus) => void;

/** What the other nodes see of a `datasphere-config` node. */
export interface DatasphereConfigNode extends Node<{ token?: string }> {
  /** Undefined when the configuration is invalid; `configError` then says why. */
  readonly endpoints?: Endpoints;
  readonly auth?: Auth;
  readonly authMode: AuthMode;
  readonly configError?: string;
  /** Where the token came from at deploy ("env": the variable named by tokenEnv). */
  readonly tokenSource: TokenSource;
  readonly tokenEnv?: string;
  /** The nodes using this config node, each with how it wants the connection's state (if at all). */
  readonly users: ReadonlyMap<Node, ConnectionListener | undefined>;
  /**
   * A user arrives: from now on every state change of the publish connection goes to `listener`,
   * and the current state at once when the connection is open.
   */
  register(user: Node, listener?: ConnectionListener): void;
  deregister(user: Node): void;
  /** The publish socket this config node owns with its socket settings (undefined when the configuration is invalid). */
  readonly publishConnection?: PublishConnection;
  /** Removes the token (and only it) from a text built from outside data. */
  redact(text: string): string;
}

/** A config node whose endpoints and token are valid. */
export type UsableConfig = DatasphereConfigNode & { endpoints: Endpoints; auth: Auth; publishConnection: PublishConnection };

export function isUsableConfig(config: DatasphereConfigNode | null | undefined): config is UsableConfig {
  return !!config && !!config.endpoints && !!config.auth && !!config.publishConnection;
}
