import { writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * With DS_BENCH_PROFILE=<dir>, starts a CPU profile of the measured section alone (not the runtime's
 * start); the returned function stops it and writes `<dir>/<name>-<time>.cpuprofile`. Without it,
 * undefined (nothing is started).
 */
export async function startProfiler(name: string): Promise<(() => Promise<void>) | undefined> {
  const dir = process.env.DS_BENCH_PROFILE;
  if (!dir) return undefined;
  const { Session } = require("node:inspector") as typeof import("node:inspector");
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object) => new Promise<any>((ok, fail) => session.post(method, params ?? {}, (err, res) => (err ? fail(err) : ok(res))));
  await post("Profiler.enable");
  if (process.env.DS_BENCH_PROFILE_INTERVAL_US) await post("Profiler.setSamplingInterval", { interval: Number(process.env.DS_BENCH_PROFILE_INTERVAL_US) });
  await post("Profiler.start");
  return async () => {
    const { profile } = await post("Profiler.stop");
    writeFileSync(join(dir, `${name}-${Date.now()}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  };
}
