import type { IncomingMessage, ServerResponse } from "node:http";

export type AuthVerdict = "ok" | "missing" | "invalid";

/** `Authorization: Token <token>`; any other scheme counts as missing (as Django REST does). */
export function checkAuthorization(header: string | undefined, token: string): AuthVerdict {
  if (!header) return "missing";
  const match = /^Token\s+(.+)$/i.exec(header.trim());
  if (!match) return "missing";
  return match[1] === token ? "ok" : "invalid";
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** Error answers carry `{"detail": "..."}`, the Django REST framework form. */
export function sendError(res: ServerResponse, status: number, detail: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { detail }, headers);
}

export const AUTH_MESSAGES = {
  missing: "Authentication credentials were not provided.",
  invalid: "Invalid token.",
} as const;

/** Sends 401 or 403 when the request is not authorised; true when it may go on. */
export function authorise(req: IncomingMessage, res: ServerResponse, token: string): AuthVerdict {
  const verdict = checkAuthorization(req.headers.authorization, token);
  if (verdict === "missing") sendError(res, 401, AUTH_MESSAGES.missing, { "www-authenticate": "Token" });
  else if (verdict === "invalid") sendError(res, 403, AUTH_MESSAGES.invalid);
  return verdict;
}

/** Resolves when the response can take more, or when it closed. */
export function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

/** Writes the chunk, then destroys the socket once it is flushed: an abrupt cut, not a clean end. */
export function writeThenCut(res: ServerResponse, chunk: string | Buffer | undefined): void {
  const cut = () => {
    res.socket?.destroy();
    res.destroy();
  };
  if (chunk && chunk.length > 0) res.write(chunk, cut);
  else if (res.headersSent) {
    // Flush what is pending first, then cut.
    res.write("", cut);
  } else cut();
}

/** Percent-decodes one path segment; undefined when it is not valid. */
export function decodeSegment(segment: string): string | undefined {
  try {
    const value = decodeURIComponent(segment);
    return value === "" ? undefined : value;
  } catch {
    return undefined;
  }
}
