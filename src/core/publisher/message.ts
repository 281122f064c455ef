import { DatasphereError } from "../errors";
import { preview } from "../redact";
import { checkStac, describeStac, type StacKind } from "../stac";

/** The fields of the documented publish message besides `data`. */
export interface PublishFields {
  activeParent: string;
  /** Sent only when set (the service defaults it to the token's organisation). */
  provider?: string;
  subscribable: boolean;
}

export interface PreparedMessage {
  /** The wire message, serialised once. */
  data: Buffer;
  kind: StacKind;
  /** The parsed STAC object (for an optional schema check). */
  doc: Record<string, unknown>;
  label: string;
}

/**
 * Builds the wire message `{active_parent, data, provider?, subscribable}` from a payload that is a
 * STAC object or its JSON text. Throws INVALID_STAC / BAD_REQUEST naming the problem; nothing is
 * built for a bad payload. A JSON-text payload goes on the wire as given (it is parsed to check it,
 * not re-serialised).
 */
export function preparePublishMessage(payload: unknown, fields: PublishFields): PreparedMessage {
  const activeParent = typeof fields.activeParent === "string" ? fields.activeParent.trim() : "";
  if (activeParent === "") throw new DatasphereError("BAD_REQUEST", "active_parent is empty: set Active parent on the node or msg.activeParent");
  if (fields.provider !== undefined && typeof fields.provider !== "string") throw new DatasphereError("BAD_REQUEST", "provider must be a string");
  if (typeof fields.subscribable !== "boolean") throw new DatasphereError("BAD_REQUEST", "subscribable must be true or false");

  let doc: unknown;
  let raw: string | undefined;
  if (typeof payload === "string") {
    try {
      doc = JSON.parse(payload);
    } catch (error) {
      throw new DatasphereError("INVALID_STAC", `payload is not JSON (${(error as Error).message}): ${preview(payload, 80)}`);
    }
    raw = payload.trim();
  } else if (Buffer.isBuffer(payload)) {
    return preparePublishMessage(payload.toString("utf8"), fields);
  } else {
    doc = payload;
  }
  const check = checkStac(doc);
  if (check.problems.length > 0 || !check.kind) {
    throw new DatasphereError("INVALID_STAC", `not published: ${describeStac(doc)} is not a valid STAC Item, Collection or Catalog: ${check.problems.join("; ")}`, {
      details: { problems: check.problems },
    });
  }
  const provider = fields.provider && fields.provider.trim() !== "" ? fields.provider : undefined;
  let text: string;
  if (raw !== undefined) {
    text = `{"active_parent":${JSON.stringify(activeParent)},"data":${raw}${provider !== undefined ? `,"provider":${JSON.stringify(provider)}` : ""},"subscribable":${fields.subscribable}}`;
  } else {
    try {
      text = JSON.stringify({ active_parent: activeParent, data: doc, provider, subscribable: fields.subscribable });
    } catch (error) {
      throw new DatasphereError("INVALID_STAC", `not published: ${describeStac(doc)} cannot be serialised as JSON (${(error as Error).message})`);
    }
  }
  return { data: Buffer.from(text, "utf8"), kind: check.kind, doc: doc as Record<string, unknown>, label: describeStac(doc) };
}
