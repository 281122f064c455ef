export type StacKind = "Item" | "Collection" | "Catalog";

export interface StacCheck {
  /** What the object is, when its `type` says so. */
  kind?: StacKind;
  /** Structural problems, each naming the field; empty when the object passes. */
  problems: string[];
}

const KIND_BY_TYPE: Record<string, StacKind> = { Feature: "Item", Collection: "Collection", Catalog: "Catalog" };

/**
 * Light structural checks: what makes an object an Item, Collection or Catalog (no JSON Schema).
 * Cheap enough to run per Item on a live stream.
 */
export function checkStac(value: unknown): StacCheck {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { problems: [`not a JSON object (got ${value === null ? "null" : Array.isArray(value) ? "an array" : typeof value})`] };
  }
  const obj = value as Record<string, unknown>;
  const problems: string[] = [];
  const kind = typeof obj.type === "string" ? KIND_BY_TYPE[obj.type] : undefined;
  if (!kind) problems.push(`type: must be "Feature", "Collection" or "Catalog" (got ${JSON.stringify(obj.type) ?? "nothing"})`);
  if (typeof obj.id !== "string" || obj.id.trim() === "") problems.push("id: missing or empty");
  if (typeof obj.stac_version !== "string" || obj.stac_version === "") problems.push("stac_version: missing");
  if (!Array.isArray(obj.links)) problems.push("links: missing (must be an array)");
  if (kind === "Item") {
    if (obj.geometry === undefined) problems.push("geometry: missing (may be null, not absent)");
    if (obj.geometry !== null && obj.geometry !== undefined && obj.bbox === undefined) problems.push("bbox: required when geometry is not null");
    const props = obj.properties;
    if (props === null || typeof props !== "object" || Array.isArray(props)) problems.push("properties: missing (must be an object)");
    else {
      const p = props as Record<string, unknown>;
      if (!("datetime" in p)) problems.push("properties.datetime: missing (null needs start_datetime and end_datetime)");
      else if (p.datetime === null && (typeof p.start_datetime !== "string" || typeof p.end_datetime !== "string")) {
        problems.push("properties.datetime: null without start_datetime and end_datetime");
      }
    }
    if (obj.assets === null || typeof obj.assets !== "object" || Array.isArray(obj.assets)) problems.push("assets: missing (must be an object)");
  } else if (kind === "Collection" || kind === "Catalog") {
    if (typeof obj.description !== "string") problems.push("description: missing");
    if (kind === "Collection") {
      if (typeof obj.license !== "string") problems.push("license: missing");
      if (obj.extent === null || typeof obj.extent !== "object") problems.push("extent: missing");
    }
  }
  return { kind, problems };
}

/** A short label for messages: `Item "S2B_…" (collection sentinel-2-l2a)`. */
export function describeStac(value: unknown): string {
  if (value === null || typeof value !== "object") return "a non-object";
  const obj = value as Record<string, unknown>;
  const kind = typeof obj.type === "string" ? KIND_BY_TYPE[obj.type] ?? obj.type : "object";
  const id = typeof obj.id === "string" ? ` "${obj.id}"` : "";
  const collection = typeof obj.collection === "string" ? ` (collection ${obj.collection})` : "";
  return `${kind}${id}${collection}`;
}
