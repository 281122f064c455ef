/** File extensions for the media types STAC assets use; the first match by prefix wins. */
const EXTENSIONS: ReadonlyArray<[string, string]> = [
  ["image/tiff", ".tif"],
  ["image/vnd.stac.geotiff", ".tif"],
  ["image/jp2", ".jp2"],
  ["image/png", ".png"],
  ["image/jpeg", ".jpg"],
  ["image/webp", ".webp"],
  ["image/gif", ".gif"],
  ["application/geo+json", ".geojson"],
  ["application/json", ".json"],
  ["application/xml", ".xml"],
  ["text/xml", ".xml"],
  ["text/plain", ".txt"],
  ["text/csv", ".csv"],
  ["text/html", ".html"],
  ["application/zip", ".zip"],
  ["application/x-hdf5", ".h5"],
  ["application/x-hdf", ".hdf"],
  ["application/x-netcdf", ".nc"],
  ["application/netcdf", ".nc"],
  ["application/x-parquet", ".parquet"],
  ["application/vnd.apache.parquet", ".parquet"],
  ["application/pdf", ".pdf"],
  ["application/gzip", ".gz"],
  ["application/x-tar", ".tar"],
];

/** Extensions that name the same format, so `SR_B1.TIF` of type image/tiff stays `SR_B1.TIF`. */
const SAME_FORMAT: ReadonlyArray<ReadonlySet<string>> = [new Set([".tif", ".tiff"]), new Set([".jpg", ".jpeg"]), new Set([".nc", ".nc4"]), new Set([".h5", ".hdf5"])];

/**
 * The extension of an asset's file: from its media type, else from the first of `hrefs` (the href
 * downloaded, the asset's own href, its alternates) whose last path segment has one. An OData
 * `.../Nodes(B02_10m.jp2)/$value` URL counts as `B02_10m.jp2`.
 */
export function extensionFor(mediaType: unknown, ...hrefs: ReadonlyArray<string | undefined>): string {
  if (typeof mediaType === "string") {
    const type = mediaType.trim().toLowerCase();
    for (const [prefix, ext] of EXTENSIONS) if (type === prefix || type.startsWith(`${prefix};`) || type.startsWith(`${prefix} `)) return ext;
  }
  for (const href of hrefs) {
    const ext = typeof href === "string" ? hrefExtension(href) : "";
    if (ext) return ext;
  }
  return "";
}

/** `key` plus `ext`, unless the key already ends with that extension or one naming the same format. */
export function withExtension(key: string, ext: string): string {
  if (!ext) return key;
  const own = /(\.[A-Za-z0-9]{1,8})$/.exec(key)?.[1]?.toLowerCase();
  if (own && (own === ext || SAME_FORMAT.some((set) => set.has(own) && set.has(ext)))) return key;
  return `${key}${ext}`;
}

/** The extension of an href's last path segment (no URL parsing: this runs for every asset of an Item). */
function hrefExtension(href: string): string {
  const cut = href.search(/[?#]/);
  const path = cut >= 0 ? href.slice(0, cut) : href;
  let end = path.length;
  let start = path.lastIndexOf("/", end - 1) + 1;
  let base = path.slice(start, end);
  if (base === "$value" || base === "%24value") {
    end = start - 1;
    start = end > 0 ? path.lastIndexOf("/", end - 1) + 1 : 0;
    base = end > 0 ? path.slice(start, end) : "";
  }
  if (base.includes("%")) base = decodeSafely(base);
  const odata = /\(([^()]*)\)$/.exec(base);
  if (odata) base = odata[1].replace(/^'|'$/g, "");
  const match = /(\.[A-Za-z0-9]{1,8})$/.exec(base);
  return match && match[1] !== base ? match[1].toLowerCase() : "";
}

function decodeSafely(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** An href fit for an error message or a log: no query string (signed URLs carry keys there), no user info. */
export function displayHref(href: string): string {
  if (href.length > 2048) return `${href.split(/[?#]/, 1)[0].slice(0, 200)}…`;
  try {
    const url = new URL(href);
    const query = url.search ? "?…" : "";
    return `${url.protocol}//${url.host}${url.pathname}${query}`;
  } catch {
    const plain = href.split(/[?#]/)[0];
    return plain.length > 200 ? `${plain.slice(0, 200)}…` : plain;
  }
}
