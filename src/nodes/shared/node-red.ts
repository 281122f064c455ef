// The small part of Node-RED's runtime API these nodes use. Node-RED ships no types of its own.
import type { EventEmitter } from "node:events";

export interface NodeMessage {
  _msgid?: string;
  payload?: unknown;
  topic?: string;
  [key: string]: unknown;
}

export type NodeStatusFill = "red" | "green" | "yellow" | "blue" | "grey";
export interface NodeStatus {
  fill?: NodeStatusFill;
  shape?: "ring" | "dot";
  text?: string;
}

export type SendFunction = (msg: NodeMessage | Array<NodeMessage | NodeMessage[] | null> | null) => void;
export type DoneFunction = (err?: Error) => void;

export interface NodeContextStore {
  get(key: string, store?: string, callback?: (err: Error | null, value: unknown) => void): unknown;
  set(key: string, value: unknown, store?: string, callback?: (err: Error | null) => void): void;
}

export interface NodeContext extends NodeContextStore {
  flow: NodeContextStore;
  global: NodeContextStore;
}

export interface NodeDef {
  id: string;
  type: string;
  name?: string;
  z?: string;
  [key: string]: unknown;
}

export interface Node<Credentials = Record<string, string>> extends EventEmitter {
  id: string;
  type: string;
  name?: string;
  z?: string;
  credentials: Credentials;
  status(status: NodeStatus | Record<string, never>): void;
  send(msg: NodeMessage | Array<NodeMessage | NodeMessage[] | null> | null): void;
  log(msg: unknown): void;
  warn(msg: unknown): void;
  error(err: unknown, msg?: NodeMessage): void;
  debug(msg: unknown): void;
  trace(msg: unknown): void;
  context(): NodeContext;
  on(event: "input", listener: (msg: NodeMessage, send: SendFunction, done: DoneFunction) => void): this;
  on(event: "close", listener: (removed: boolean, done: () => void) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export interface RequestLike {
  body: Record<string, unknown>;
  params: Record<string, string>;
}
export interface ResponseLike {
  status(code: number): ResponseLike;
  json(body: unknown): void;
}
export type Handler = (req: RequestLike, res: ResponseLike, next?: () => void) => void;

export interface MessageHookEvent {
  msg: NodeMessage;
  source?: { id: string; node?: Node };
  destination?: { id: string; node?: Node };
}

export interface NodeAPI {
  nodes: {
    createNode(node: object, def: NodeDef): void;
    registerType(type: string, ctor: Function, options?: { credentials?: Record<string, { type: "text" | "password" }>; settings?: Record<string, unknown> }): void;
    getNode(id: string): Node | null;
    getCredentials(id: string): Record<string, string> | undefined;
  };
  util: {
    evaluateNodeProperty(value: unknown, type: string, node: Node, msg: NodeMessage | null, callback?: (err: Error | null, value: unknown) => void): unknown;
    getSetting?(node: Node | null, name: string): string | undefined;
    cloneMessage<T>(msg: T): T;
  };
  hooks: {
    add(hookId: string, callback: (event: MessageHookEvent) => void | boolean | Promise<void>): void;
    remove(hookId: string): void;
  };
  httpAdmin: {
    post(path: string, ...handlers: Handler[]): void;
    get(path: string, ...handlers: Handler[]): void;
  };
  auth: {
    needsPermission(permission: string): Handler;
  };
  settings: Record<string, unknown>;
  log: {
    info(msg: unknown): void;
    warn(msg: unknown): void;
    error(msg: unknown): void;
  };
  _(key: string, substitutions?: Record<string, unknown>): string;
}
