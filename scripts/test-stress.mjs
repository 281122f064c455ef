// The suite under CPU starvation: two busy processes hold both cores while the suite runs three
// times in a row (already built by `npm run test:stress`). Fails if any run fails. Timing-dependent
// tests show up here long before they fail in CI on a loaded machine.
import { spawn } from "node:child_process";
import { availableParallelism } from "node:os";

const RUNS = Number(process.env.STRESS_RUNS ?? 3);
const BUSY = Number(process.env.STRESS_BUSY ?? 2);

function busyProcess() {
  const child = spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" });
  child.unref();
  return child;
}

function runSuite() {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ["node_modules/mocha/bin/mocha.js"], { stdio: ["ignore", "pipe", "inherit"] });
    let tail = "";
    child.stdout.on("data", (chunk) => {
      process.stdout.write(chunk);
      tail = (tail + chunk.toString()).slice(-4000);
    });
    child.on("exit", (code) => resolve({ code: code ?? 1, seconds: (Date.now() - started) / 1000, summary: /(\d+ passing[\s\S]*)$/.exec(tail)?.[1]?.trim() ?? "" }));
  });
}

const busy = Array.from({ length: BUSY }, busyProcess);
const stopBusy = () => busy.forEach((child) => child.kill("SIGKILL"));
process.on("exit", stopBusy);
process.on("SIGINT", () => process.exit(130));
console.log(`test:stress: ${BUSY} busy processes on ${availableParallelism()} cores, ${RUNS} runs of the suite`);
const results = [];
for (let i = 1; i <= RUNS; i++) {
  const result = await runSuite();
  results.push(result);
  console.log(`test:stress: run ${i}/${RUNS} ${result.code === 0 ? "passed" : "FAILED"} in ${result.seconds.toFixed(0)} s`);
}
stopBusy();
for (const [i, r] of results.entries()) console.log(`run ${i + 1}: exit ${r.code}, ${r.seconds.toFixed(0)} s\n${r.summary.split("\n").slice(0, 3).join("\n")}`);
process.exit(results.every((r) => r.code === 0) ? 0 : 1);
