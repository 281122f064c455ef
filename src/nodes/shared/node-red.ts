// Node-RED's runtime API as these nodes use it: the community types (@types/node-red), narrowed
// where our nodes rely on more than they say (settings we read, message hooks, admin routes).
import type * as NR from "node-red";

/** A message: Node-RED's, with the properties our nodes read by name. */
export type NodeMessage = NR.NodeMessage & Record<string, unknown>;
export type NodeStatus = NR.NodeStatus;
export type NodeDef = NR.NodeDef & Record<string, unknown>;
export type Node<Credentials extends object = Record<string, string>> = NR.Node<Credentials>;
export type SendFunction = (msg: NR.NodeMessage | Array<NR.NodeMessage | NR.NodeMessage[] | null>) => void;
export type DoneFunction = (err?: Error) => void;

export interface MessageHookEvent {
  msg: NodeMessage;
  source?: { id: string; port?: number; node?: Node };
  destination?: { id: string; node?: Node };
  node?: { id: string };
}

/** The runtime handed to a node module, with the settings our nodes read. */
export type NodeAPI = Omit<NR.NodeAPI, "settings"> & {
  settings: NR.NodeAPI["settings"] & Record<string, unknown>;
};
