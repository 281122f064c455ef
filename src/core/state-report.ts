import type { DatasphereError } from "./errors";

/**
 * The one shape in which every long-running core operation (subscription, publisher, dataset and
 * STAC readers) tells where it is, so a node maps one shape to its status.
 */
export interface StateReport<S extends string = string> {
  state: S;
  /** Why the last attempt ended (no secrets). */
  error?: DatasphereError;
  /** Delay before the next attempt. */
  retryInMs?: number;
  /** Consecutive failed attempts so far. */
  attempt?: number;
}
