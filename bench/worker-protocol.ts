// Both ends of a bench worker process: the input goes in as its one JSON argument, the result comes
// back as the last line it prints on stdout, so that each measurement's RSS is its own.
import { fork } from "node:child_process";
import { join } from "node:path";

export interface ForkOptions {
  /** Node options of the worker (default: this process's). */
  execArgv?: string[];
  /** A stuck worker is killed after this and fails the run. */
  timeoutMs: number;
  /** Names the worker in errors. */
  label: string;
}

/** Runs build/bench/`script` with `input` and resolves with the result it printed. */
export function forkBenchWorker<R>(script: string, input: unknown, options: ForkOptions): Promise<R> {
  return new Promise((resolve, reject) => {
    const child = fork(join(__dirname, script), [JSON.stringify(input)], { execArgv: options.execArgv, stdio: ["ignore", "pipe", "inherit", "ipc"] });
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    const timer = setTimeout(() => child.kill(), options.timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      const line = out.trim().split("\n").pop() ?? "";
      if (code !== 0 || !line) return reject(new Error(`${options.label} exited with ${code}${code === null ? " (killed: too slow or stuck)" : ""}`));
      resolve(JSON.parse(line) as R);
    });
  });
}

/** The worker's side: runs `measure` on the JSON argument, prints the result as one line and exits (1, with the stack, on failure). */
export function runAsBenchWorker<I, R>(measure: (input: I) => Promise<R>): void {
  const input = JSON.parse(process.argv[2]) as I;
  measure(input).then(
    (result) => {
      process.stdout.write(`${JSON.stringify(result)}\n`);
      process.exit(0);
    },
    (error) => {
      process.stderr.write(`${(error as Error).stack ?? error}\n`);
      process.exit(1);
    },
  );
}

/** A bench entry point: a failure is printed and exits 1; the process ends either way, since a benchmark may leave a keep-alive socket or timer behind. */
export function runAsBenchMain(main: () => Promise<void>): void {
  main()
    .catch((error) => {
      console.error(error);
      process.exitCode = 1;
    })
    .finally(() => process.exit(process.exitCode ?? 0));
}
