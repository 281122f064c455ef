import { createServer, type Server, type Socket } from "node:net";

/**
 * The smallest MQTT 3.1.1 broker that lets the core mqtt nodes talk to each other on loopback:
 * CONNECT, SUBSCRIBE (wildcards + and #), UNSUBSCRIBE, PUBLISH (QoS 0/1 in, delivered at QoS 0),
 * PINGREQ, DISCONNECT. No retained messages, sessions or wills. For the MQTT fan-out example only.
 */
export interface MiniBroker {
  port: number;
  /** PUBLISH packets received from clients, by topic. */
  published: string[];
  /** Messages delivered to subscribers, as "clientId <- topic". */
  delivered: string[];
  close(): Promise<void>;
}

interface Client {
  socket: Socket;
  id: string;
  filters: Set<string>;
}

export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.replace(/^\$share\/[^/]+\//, "").split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

function remainingLength(n: number): Buffer {
  const bytes: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    bytes.push(b);
  } while (n > 0);
  return Buffer.from(bytes);
}

function packet(firstByte: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([firstByte]), remainingLength(body.length), body]);
}

function str(s: string): Buffer {
  const b = Buffer.from(s, "utf8");
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
}

export async function startMiniBroker(): Promise<MiniBroker> {
  const clients = new Set<Client>();
  const published: string[] = [];
  const delivered: string[] = [];

  const handle = (client: Client, type: number, flags: number, body: Buffer) => {
    const u16 = (at: number) => body.readUInt16BE(at);
    switch (type) {
      case 1: { // CONNECT: protocol name, level, flags, keepalive, then the client id
        const nameLen = u16(0);
        const idAt = 2 + nameLen + 4;
        client.id = body.subarray(idAt + 2, idAt + 2 + u16(idAt)).toString("utf8") || "anonymous";
        client.socket.write(Buffer.from([0x20, 2, 0, 0]));
        break;
      }
      case 3: { // PUBLISH
        const qos = (flags >> 1) & 3;
        const topicLen = u16(0);
        const topic = body.subarray(2, 2 + topicLen).toString("utf8");
        let at = 2 + topicLen;
        if (qos > 0) {
          const id = u16(at);
          at += 2;
          client.socket.write(Buffer.from([0x40, 2, id >> 8, id & 0xff]));
        }
        const payload = body.subarray(at);
        published.push(topic);
        const out = packet(0x30, Buffer.concat([str(topic), payload]));
        for (const c of clients) {
          if ([...c.filters].some((f) => topicMatches(f, topic))) {
            c.socket.write(out);
            delivered.push(`${c.id} <- ${topic}`);
          }
        }
        break;
      }
      case 8: { // SUBSCRIBE
        const id = u16(0);
        const granted: number[] = [];
        for (let at = 2; at < body.length; ) {
          const len = u16(at);
          client.filters.add(body.subarray(at + 2, at + 2 + len).toString("utf8"));
          at += 2 + len + 1;
          granted.push(0);
        }
        client.socket.write(packet(0x90, Buffer.from([id >> 8, id & 0xff, ...granted])));
        break;
      }
      case 10: { // UNSUBSCRIBE
        const id = u16(0);
        for (let at = 2; at < body.length; ) {
          const len = u16(at);
          client.filters.delete(body.subarray(at + 2, at + 2 + len).toString("utf8"));
          at += 2 + len;
        }
        client.socket.write(Buffer.from([0xb0, 2, id >> 8, id & 0xff]));
        break;
      }
      case 12: // PINGREQ
        client.socket.write(Buffer.from([0xd0, 0]));
        break;
      case 14: // DISCONNECT
        client.socket.end();
        break;
      default: // PUBACK etc. from clients: nothing to do at QoS 0 delivery
        break;
    }
  };

  const server: Server = createServer((socket) => {
    const client: Client = { socket, id: "", filters: new Set() };
    clients.add(client);
    let buffer = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        if (buffer.length < 2) return;
        let length = 0;
        let multiplier = 1;
        let at = 1;
        let complete = false;
        while (at < buffer.length && at <= 4) {
          const b = buffer[at++];
          length += (b & 0x7f) * multiplier;
          multiplier *= 128;
          if ((b & 0x80) === 0) {
            complete = true;
            break;
          }
        }
        if (!complete || buffer.length < at + length) return;
        const first = buffer[0];
        const body = buffer.subarray(at, at + length);
        buffer = buffer.subarray(at + length);
        handle(client, first >> 4, first & 0x0f, body);
      }
    });
    socket.on("error", () => undefined);
    socket.on("close", () => clients.delete(client));
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    port,
    published,
    delivered,
    close: () =>
      new Promise<void>((done) => {
        for (const c of clients) c.socket.destroy();
        server.close(() => done());
      }),
  };
}
