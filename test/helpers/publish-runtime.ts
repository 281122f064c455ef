import { helper, startHelperServer, stopHelperServer } from "./node-red";
import { startWsTestServer, type WsTestServer, type WsTestServerOptions } from "./ws-test-server";

/**
 * The hooks of a describe block that runs publish nodes in the test runtime: fast reconnects, a
 * helper server for the block, and after each test the flows unloaded and what the test started
 * stopped (last started, first stopped). Call it inside `describe`.
 */
export function publishRuntime(token: string) {
  const cleanup: Array<() => Promise<void>> = [];
  before(async () => {
    helper.settings({ datasphereReconnectMs: 20, datasphereReconnectMaxMs: 200, datasphereAuthRetryMs: 30_000, datasphereHandshakeTimeoutMs: 2_000 });
    await startHelperServer();
  });
  after(stopHelperServer);
  afterEach(async () => {
    await helper.unload();
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });
  /** A publish endpoint on loopback (header auth, no heartbeats unless asked), killed after the test. */
  async function server(opts: Partial<WsTestServerOptions> = {}): Promise<WsTestServer> {
    const s = await startWsTestServer({ token, authMode: "header", heartbeatMs: 0, ...opts });
    cleanup.push(() => s.kill());
    return s;
  }
  return { cleanup, server };
}
