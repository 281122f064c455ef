import { clampDelay, systemClock, type Clock } from "./clock";
import { DatasphereError } from "./errors";

/** Resolves after ms (clamped) on the clock, or rejects with ABORTED when the signal fires first. */
export function sleep(ms: number, signal?: AbortSignal, clock: Clock = systemClock): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError());
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, clampDelay(ms));
    const onAbort = () => {
      clock.clearTimeout(timer);
      reject(abortError());
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export function abortError(what = "operation"): DatasphereError {
  return new DatasphereError("ABORTED", `${what} aborted`);
}

/** A signal that fires when any of the given signals fires. */
export function anySignal(signals: ReadonlyArray<AbortSignal | undefined>): AbortSignal {
  return AbortSignal.any(signals.filter((s): s is AbortSignal => s !== undefined));
}
