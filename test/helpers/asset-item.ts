/** A minimal valid STAC Item carrying `assets`, for the asset planner and selection tests; `overrides` replace any field. */
export function assetItem(
  identity: { id: string; collection: string; selfHref: string },
  assets: Record<string, unknown>,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    type: "Feature",
    stac_version: "1.0.0",
    id: identity.id,
    collection: identity.collection,
    geometry: null,
    properties: { datetime: "2024-04-19T09:55:49Z" },
    links: [{ rel: "self", href: identity.selfHref }],
    assets,
    ...overrides,
  };
}
