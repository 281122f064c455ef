/**
 * Groups Items into arrays of at most `size` without ever waiting for more: an array goes out as soon
 * as `size` Items are pending, and whatever is pending goes out on `setImmediate` scheduled on the
 * first pending Item, i.e. at the end of the event-loop turn, with no wait for further input. So the
 * Items read in one turn travel together: libuv reads a socket up to 32 times (64 KiB each) per turn,
 * while a microtask would flush after every read (measured: ~9 Items of 7 KB per message instead of
 * ~90). Node-RED delivers every message on `setImmediate` too, so a lone Item is not held back.
 */
export class ItemArrays<T> {
  private pending: T[] = [];
  private scheduled = false;

  constructor(
    private readonly size: number,
    private readonly send: (items: T[]) => void,
    private readonly onError: (error: unknown) => void,
  ) {}

  add(item: T): void {
    this.pending.push(item);
    if (this.pending.length >= this.size) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        try {
          this.flush();
        } catch (error) {
          this.onError(error);
        }
      });
    }
  }

  /** Sends what is pending now (before a disconnect completes, so nothing received is lost). */
  flush(): void {
    if (this.pending.length === 0) return;
    const items = this.pending;
    this.pending = [];
    this.send(items);
  }
}
