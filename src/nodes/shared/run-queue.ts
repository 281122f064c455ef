import { DatasphereError } from "../../core/errors";
import type { NodeMessage, SendFunction } from "./node-red";

export const MAX_QUEUE = 100;

/** One input message waiting for, or in, its run; settled when the run is over. */
export interface Job {
  msg: NodeMessage;
  send: SendFunction;
  resolve(): void;
  reject(error: unknown): void;
}

/** What the queue needs of a run: `stop` (the user's action) and `abort` (the node closes). */
export interface Run {
  stop(): void;
  abort(): void;
}

export interface RunQueueOptions<R extends Run> {
  /** Refuse an input while a run is going instead of queueing it. */
  refuseWhenBusy: boolean;
  /** The node's catalog: `errors.busy` and `errors.queueFull` come from it. */
  t(key: string, substitutions?: Record<string, unknown>): string;
  /** Starts the job's run; `finished` settles once the run has resolved or rejected the job. */
  begin(job: Job): { run: R; finished: Promise<void> };
}

/**
 * One run at a time: inputs wait in a queue of at most MAX_QUEUE (or are refused while busy),
 * `stop` empties the queue and stops the run, `close` empties it and aborts the run.
 */
export class RunQueue<R extends Run> {
  private readonly waiting: Job[] = [];
  private active: { run: R; finished: Promise<void> } | undefined;
  private isClosing = false;

  constructor(private readonly options: RunQueueOptions<R>) {}

  /** The run going on, if any. */
  get current(): R | undefined {
    return this.active?.run;
  }

  get closing(): boolean {
    return this.isClosing;
  }

  input(msg: NodeMessage, send: SendFunction): Promise<void> {
    const { t, refuseWhenBusy } = this.options;
    return new Promise<void>((resolve, reject) => {
      if (this.active && refuseWhenBusy) throw new DatasphereError("BAD_REQUEST", t("errors.busy"));
      if (this.active && this.waiting.length >= MAX_QUEUE) throw new DatasphereError("BAD_REQUEST", t("errors.queueFull", { max: MAX_QUEUE }));
      this.waiting.push({ msg, send, resolve, reject });
      if (!this.active) this.startNext();
    });
  }

  stop(): void {
    for (const queued of this.waiting.splice(0)) queued.resolve();
    this.active?.run.stop();
  }

  async close(): Promise<void> {
    this.isClosing = true;
    for (const queued of this.waiting.splice(0)) queued.resolve();
    this.active?.run.abort();
    await this.active?.finished;
  }

  private startNext(): void {
    const job = this.waiting.shift();
    if (!job || this.isClosing) return;
    const { run, finished } = this.options.begin(job);
    const settled = finished.then(
      () => undefined,
      (error) => job.reject(error),
    );
    this.active = { run, finished: settled };
    void settled.finally(() => {
      if (this.isClosing) job.resolve();
      this.active = undefined;
      this.startNext();
    });
  }
}
