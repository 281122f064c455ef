import type { IncomingMessage, ServerResponse } from "node:http";
import type { ConnectionFaults } from "./faults";
import { FaultyWriter } from "./faulty-writer";

/**
 * Subscription packages: a bounded ring of recent events per package (for Last-Event-ID replay)
 * and the open Server-Sent Events responses. Event ids are per package, increasing integers.
 */
export interface SubscriptionEvent {
  id: number;
  /** The Item as JSON text. */
  data: string;
  /** Index of a generated live Item (for its self link), when it is one. */
  index?: number;
}

export interface HubOptions {
  keepAliveMs: number;
  retryMs: number;
  replayBuffer: number;
  /** Most events queued for one slow subscriber before the server drops it (it can resume with Last-Event-ID). */
  maxQueuedEvents: number;
  /**
   * "event" (default): one write per event, as a live server that flushes each event does.
   * "batched": the events of one turn of the event loop in one write (the bench's kind server).
   */
  writes?: "event" | "batched";
  onInjected: () => void;
}

const MALFORMED_EVENT = 'event: message\ndata: {"type": "Feature", "id": "truncated-by-fault-injection", "geometry": {\n\n';

class Subscriber {
  readonly writer: FaultyWriter;
  readonly queue: string[] = [];
  blocked = false;
  readonly #timer: NodeJS.Timeout | undefined;
  #batch = "";
  #batchTimer: NodeJS.Immediate | undefined;

  constructor(
    readonly pkg: string,
    readonly res: ServerResponse,
    faults: ConnectionFaults,
    private readonly hub: SubscriptionHub,
    keepAliveMs: number,
  ) {
    this.writer = new FaultyWriter(res, faults, hub.options.onInjected);
    if (keepAliveMs > 0) {
      this.#timer = setInterval(() => {
        if (!this.blocked && this.queue.length === 0) this.writeFrame(": keep-alive\n\n", false);
      }, keepAliveMs);
      this.#timer.unref();
    }
  }

  send(event: SubscriptionEvent): void {
    if (this.writer.stopped) return;
    let frame = `id: ${event.id}\ndata: ${event.data}\n\n`;
    if (this.writer.malformedDue()) frame = MALFORMED_EVENT + frame;
    if (this.hub.options.writes === "batched" && !this.blocked && !this.writer.countsEvents) {
      this.#batch += frame;
      this.#batchTimer ??= setImmediate(() => {
        this.#batchTimer = undefined;
        const batch = this.#batch;
        this.#batch = "";
        if (batch) this.writeFrame(batch, true);
      });
      return;
    }
    if (this.blocked) {
      if (this.queue.length >= this.hub.options.maxQueuedEvents) {
        // Too slow a reader: drop it rather than buffer without bound.
        this.res.socket?.destroy();
        return;
      }
      this.queue.push(frame);
      return;
    }
    this.writeFrame(frame, true);
  }

  writeFrame(frame: string, isEvent: boolean): void {
    const result = this.writer.write(frame, isEvent);
    if (result === "full" && !this.blocked) {
      this.blocked = true;
      void this.writer.ready().then(() => this.#flush());
    }
    if (result === "gone" && !this.writer.stalled) this.close();
  }

  #flush(): void {
    this.blocked = false;
    while (!this.blocked && this.queue.length > 0 && !this.writer.stopped) this.writeFrame(this.queue.shift() as string, true);
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    if (this.#batchTimer) clearImmediate(this.#batchTimer);
    this.hub.remove(this);
  }
}

class Channel {
  nextId = 1;
  readonly ring: SubscriptionEvent[] = [];
  readonly subscribers = new Set<Subscriber>();
  constructor(private readonly capacity: number) {}

  push(data: string, index?: number): SubscriptionEvent {
    const event: SubscriptionEvent = { id: this.nextId++, data, index };
    this.ring.push(event);
    if (this.ring.length > this.capacity) this.ring.splice(0, this.ring.length - this.capacity);
    return event;
  }

  /** Events after the given id that are still in the ring. */
  since(lastId: number): SubscriptionEvent[] {
    const first = this.ring.findIndex((e) => e.id > lastId);
    return first < 0 ? [] : this.ring.slice(first);
  }
}

export class SubscriptionHub {
  readonly #channels = new Map<string, Channel>();
  eventsSent = 0;

  constructor(readonly options: HubOptions) {}

  #channel(pkg: string): Channel {
    let channel = this.#channels.get(pkg);
    if (!channel) {
      channel = new Channel(this.options.replayBuffer);
      this.#channels.set(pkg, channel);
    }
    return channel;
  }

  has(pkg: string): boolean {
    return this.#channels.has(pkg);
  }

  /** Makes the package known (so strict mode accepts it) without sending anything. */
  declare(pkg: string): void {
    this.#channel(pkg);
  }

  packages(): string[] {
    return [...this.#channels.keys()];
  }

  /** Adds an Item to the package and sends it to every subscriber; returns its event id. */
  publish(pkg: string, itemJson: string, index?: number): number {
    const channel = this.#channel(pkg);
    const event = channel.push(itemJson, index);
    for (const subscriber of channel.subscribers) {
      subscriber.send(event);
      this.eventsSent++;
    }
    return event.id;
  }

  /** Recent event of a live generated Item, by its index (for the Item's self link). */
  findByIndex(pkg: string, index: number): SubscriptionEvent | undefined {
    return this.#channels.get(pkg)?.ring.find((e) => e.index === index);
  }

  subscriberCount(pkg: string): number {
    return this.#channels.get(pkg)?.subscribers.size ?? 0;
  }

  /** Opens the SSE response, replays what the client missed, and keeps it registered until it closes. */
  attach(pkg: string, req: IncomingMessage, res: ServerResponse, faults: ConnectionFaults): void {
    const channel = this.#channel(pkg);
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    res.flushHeaders();
    const subscriber = new Subscriber(pkg, res, faults, this, this.options.keepAliveMs);
    channel.subscribers.add(subscriber);
    res.on("close", () => subscriber.close());
    if (!subscriber.writer.checkImmediate()) {
      if (!subscriber.writer.stalled) subscriber.close();
      return;
    }
    subscriber.writeFrame(`retry: ${this.options.retryMs}\n\n`, false);
    const header = req.headers["last-event-id"];
    const lastId = typeof header === "string" && /^\d+$/.test(header.trim()) ? Number(header.trim()) : undefined;
    if (lastId !== undefined && !faults.ignoreLastEventId) {
      for (const event of channel.since(lastId)) {
        subscriber.send(event);
        this.eventsSent++;
      }
    }
  }

  remove(subscriber: Subscriber): void {
    this.#channels.get(subscriber.pkg)?.subscribers.delete(subscriber);
  }

  /** Ends every open subscription response (server shutdown). */
  closeAll(): void {
    for (const channel of this.#channels.values()) {
      for (const subscriber of channel.subscribers) {
        subscriber.close();
        subscriber.res.destroy();
      }
    }
  }
}
