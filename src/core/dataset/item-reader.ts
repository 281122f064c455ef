import { DatasphereError } from "../errors";
import type { DatasetEvent } from "./events";
import { bodyLimit, get, readJsonBody, withRetries, type ReaderOptions } from "./http";

/** Reads an item package: one STAC Item. 404 becomes "unknown item package". */
export async function* readItem(url: string, options: ReaderOptions): AsyncGenerator<DatasetEvent, void, undefined> {
  const what = "item package";
  const item = await withRetries(url, options, async () => {
    let response;
    try {
      response = await get(url, options, what, "application/geo+json, application/json");
    } catch (error) {
      if ((error as DatasphereError).code === "NOT_FOUND") {
        throw new DatasphereError("NOT_FOUND", `${what}: unknown item package (HTTP 404)`, { status: 404 });
      }
      throw error;
    }
    const doc = await readJsonBody(response, what, bodyLimit(options));
    if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw new DatasphereError("PROTOCOL", `${what}: not a JSON object`);
    return doc as Record<string, unknown>;
  });
  yield { kind: "items", items: [item] };
}
