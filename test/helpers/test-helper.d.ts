declare module "node-red-node-test-helper" {
  import type { EventEmitter } from "node:events";
  interface TestHelper {
    init(runtimePath?: string, userSettings?: Record<string, unknown>): void;
    settings(userSettings: Record<string, unknown>): Record<string, unknown>;
    load(nodes: unknown, flow: unknown[], credentials?: Record<string, unknown>): Promise<void>;
    unload(): Promise<void>;
    setFlows(flow: unknown[], type: "full" | "nodes" | "flows", credentials?: Record<string, unknown>): Promise<void>;
    getNode(id: string): any;
    clearFlows(): Promise<void>;
    startServer(done?: (err?: Error) => void): Promise<void> | void;
    stopServer(done?: (err?: Error) => void): Promise<void> | void;
    request(): any;
    log(): any;
    url(): string;
    _redNodes: any;
    _events: EventEmitter;
    _RED: any;
  }
  const helper: TestHelper;
  export = helper;
}
