import { closeSync, fdatasyncSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { crc32 } from "node:zlib";
import { systemClock, type Clock, type TimerHandle } from "../clock";
import { DatasphereError, toDatasphereError } from "../errors";

/**
 * When the outbox file is flushed to the disk (fdatasync). Every record is written to the file before
 * `add` returns, so a crash or SIGKILL of Node-RED never loses one; fsync only matters when the host
 * itself goes down (power loss, kernel crash):
 * - "interval" (default): at most `fsyncIntervalMs` (1 s) after a write: a host crash loses at most that;
 * - "always": after every added message (slowest: one disk flush per message);
 * - "never": left to the operating system (typically up to 30 s).
 */
export type FsyncPolicy = "interval" | "always" | "never";

export interface DurableOutboxOptions {
  file: string;
  fsync?: FsyncPolicy;
  fsyncIntervalMs?: number;
  /** Bytes of waiting messages the file may hold; past it `add` fails with OUTBOX_FULL. Default 256 MiB. */
  maxBytes?: number;
  clock?: Clock;
}

export interface DurableRecord {
  id: number;
  offeredAt: number;
  data: Buffer;
}

export interface Recovery {
  /** Whole records read back. */
  records: number;
  /** Bytes after the last whole record (a torn write or corruption), cut off. */
  discardedBytes: number;
}

const MAGIC = Buffer.from("DSOUTBOX1\n");
const ADD = 1;
const DONE = 2;
/** type u8, payload length u32, crc32 u32 (over everything after it), id f64, offeredAt f64. */
const HEADER = 1 + 4 + 4 + 8 + 8;
const COMPACT_MIN_DONE = 1000;

/**
 * An append-only file of the messages a publish node accepted and has not finished: an ADD record
 * per message, a DONE record when it settles. Opening it reads back every whole record (a truncated or
 * corrupt tail is cut off, never a crash) and compacts it to the messages still waiting. The file is
 * compacted again (rewritten to a temporary file, renamed over) when finished records outnumber
 * waiting ones.
 */
export class DurableOutbox {
  private fd: number;
  private readonly live = new Map<number, DurableRecord>();
  private liveBytes = 0;
  private doneRecords = 0;
  private nextId = 1;
  private dirty = false;
  /** DONE records not yet written: they go out with the next ADD or on the next turn of the event loop. */
  private pendingDone: Buffer[] = [];
  private doneFlush?: NodeJS.Immediate;
  private syncTimer?: TimerHandle;
  private closed = false;
  private readonly clock: Clock;
  private readonly policy: FsyncPolicy;
  readonly recovery: Recovery;

  private constructor(private readonly options: DurableOutboxOptions) {
    this.clock = options.clock ?? systemClock;
    this.policy = options.fsync ?? "interval";
    mkdirSync(dirname(options.file), { recursive: true });
    this.recovery = this.readBack();
    this.fd = this.rewrite();
  }

  /** Opens (or creates) the file and reads back what it holds. Throws IO when the file cannot be written. */
  static open(options: DurableOutboxOptions): DurableOutbox {
    try {
      return new DurableOutbox(options);
    } catch (error) {
      throw toDatasphereError(error, `durable outbox ${options.file}`);
    }
  }

  /** The messages the file held when it was opened and that are not finished yet, oldest first. */
  pending(): DurableRecord[] {
    return [...this.live.values()];
  }

  get size(): number {
    return this.live.size;
  }

  /** Records a message before it is handed to the publisher; its id is for `remove`. */
  add(data: Buffer): number {
    if (this.closed) throw new DatasphereError("CLOSED", "durable outbox closed");
    const max = this.options.maxBytes ?? 256 * 1024 * 1024;
    if (this.liveBytes + data.length > max) {
      throw new DatasphereError("OUTBOX_FULL", `durable outbox full (${Math.round(max / 1048576)} MB of messages waiting): this message was not published`);
    }
    const record = { id: this.nextId++, offeredAt: this.clock.now(), data };
    try {
      const add = encode(ADD, record.id, record.offeredAt, data);
      this.append(this.pendingDone.length > 0 ? Buffer.concat([...this.pendingDone.splice(0), add]) : add);
      if (this.policy === "always") fdatasyncSync(this.fd);
    } catch (error) {
      throw toDatasphereError(error, "durable outbox: the message could not be written, so it was not published");
    }
    this.live.set(record.id, record);
    this.liveBytes += data.length;
    return record.id;
  }

  /**
   * The message ended (delivered, or failed for good): it will not be sent again after a restart.
   * Its DONE record is written with the next ADD or on the next turn of the event loop (one write for
   * many); a crash before that only means the message is sent again after the restart.
   */
  remove(id: number): void {
    const record = this.live.get(id);
    if (!record || this.closed) return;
    this.live.delete(id);
    this.liveBytes -= record.data.length;
    this.pendingDone.push(encode(DONE, id, 0, Buffer.alloc(0)));
    this.doneRecords++;
    this.doneFlush ??= setImmediate(() => this.flushDone());
  }

  private flushDone(): void {
    this.doneFlush = undefined;
    if (this.closed) return;
    if (this.pendingDone.length > 0) {
      try {
        this.append(Buffer.concat(this.pendingDone.splice(0)));
      } catch {
        return; // at worst those messages are sent again after a restart
      }
    }
    if (this.doneRecords >= COMPACT_MIN_DONE && this.doneRecords > this.live.size) {
      try {
        closeSync(this.fd);
        this.fd = this.rewrite();
      } catch {
        this.fd = openSync(this.options.file, "a");
      }
    }
  }

  /** Flushes and closes the file; what is still waiting stays in it for the next start. */
  close(): void {
    if (this.closed) return;
    if (this.doneFlush) clearImmediate(this.doneFlush);
    this.flushDone();
    this.closed = true;
    this.clock.clearTimeout(this.syncTimer);
    try {
      if (this.policy !== "never") fdatasyncSync(this.fd);
    } finally {
      closeSync(this.fd);
    }
  }

  /** Closes and deletes the file (the node was removed from the flow). */
  destroy(): void {
    this.close();
    rmSync(this.options.file, { force: true });
  }

  private append(bytes: Buffer): void {
    let offset = 0;
    while (offset < bytes.length) offset += writeSync(this.fd, bytes, offset, bytes.length - offset);
    if (this.policy === "interval" && !this.dirty) {
      this.dirty = true;
      this.syncTimer = this.clock.setTimeout(() => {
        this.dirty = false;
        if (!this.closed) fdatasyncSync(this.fd);
      }, this.options.fsyncIntervalMs ?? 1000);
    }
  }

  /** Reads every whole record; stops at the first torn or corrupt one. */
  private readBack(): Recovery {
    let bytes: Buffer;
    try {
      bytes = readFileSync(this.options.file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return { records: 0, discardedBytes: 0 };
      throw error;
    }
    if (bytes.length < MAGIC.length || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) return { records: 0, discardedBytes: bytes.length };
    let offset = MAGIC.length;
    let records = 0;
    while (offset + HEADER <= bytes.length) {
      const type = bytes.readUInt8(offset);
      const length = bytes.readUInt32BE(offset + 1);
      const crc = bytes.readUInt32BE(offset + 5);
      const end = offset + HEADER + length;
      if ((type !== ADD && type !== DONE) || end > bytes.length || crc32(bytes.subarray(offset + 9, end)) !== crc) break;
      const id = bytes.readDoubleBE(offset + 9);
      const offeredAt = bytes.readDoubleBE(offset + 17);
      if (type === ADD) {
        const record = { id, offeredAt, data: Buffer.from(bytes.subarray(offset + HEADER, end)) };
        this.live.set(id, record);
        this.liveBytes += record.data.length;
      } else {
        const gone = this.live.get(id);
        if (gone) this.liveBytes -= gone.data.length;
        this.live.delete(id);
      }
      this.nextId = Math.max(this.nextId, id + 1);
      records++;
      offset = end;
    }
    return { records, discardedBytes: bytes.length - offset };
  }

  /** Writes the waiting records to a new file, makes it durable and puts it in place; returns its fd for appending. */
  private rewrite(): number {
    const tmp = `${this.options.file}.tmp`;
    const fd = openSync(tmp, "w");
    try {
      const parts: Buffer[] = [MAGIC];
      for (const record of this.live.values()) parts.push(encode(ADD, record.id, record.offeredAt, record.data));
      const all = Buffer.concat(parts);
      let offset = 0;
      while (offset < all.length) offset += writeSync(fd, all, offset, all.length - offset);
      ftruncateSync(fd, all.length);
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.options.file);
    syncDirectory(dirname(this.options.file));
    this.doneRecords = 0;
    return openSync(this.options.file, "a");
  }
}

/** Makes a rename in this folder durable (its entry is on disk, not only the file's bytes); where a folder cannot be opened (Windows), the rename stands as it is. */
function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    /* not supported here */
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function encode(type: number, id: number, offeredAt: number, data: Buffer): Buffer {
  const out = Buffer.allocUnsafe(HEADER + data.length);
  out.writeUInt8(type, 0);
  out.writeUInt32BE(data.length, 1);
  out.writeDoubleBE(id, 9);
  out.writeDoubleBE(offeredAt, 17);
  data.copy(out, HEADER);
  out.writeUInt32BE(crc32(out.subarray(9)), 5);
  return out;
}
