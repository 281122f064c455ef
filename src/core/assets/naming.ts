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

/** `.tif` for a GeoTIFF/COG media type, else the href's own extension, else "". */
export function extensionFor(mediaType: unknown, href: string): string {
  if (typeof mediaType === "string") {
    const type = mediaType.trim().toLowerCase();
    for (const [prefix, ext] of EXTENSIONS) if (type === prefix || type.startsWith(`${prefix};`) || type.startsWith(`${prefix} `)) return ext;
  }
  let pathname = href;
  try {
    pathname = new URL(href).pathname;
  } catch {
    pathname = href.split(/[?#]/)[0];
  }
  const base = pathname.split("/").pop() ?? "";
  const match = /(\.[A-Za-z0-9]{1,8})$/.exec(decodeSafely(base));
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
  try {
    const url = new URL(href);
    const query = url.search ? "?…" : "";
    return `${url.protocol}//${url.host}${url.pathname}${query}`;
  } catch {
    const plain = href.split(/[?#]/)[0];
    return plain.length > 200 ? `${plain.slice(0, 200)}…` : plain;
  }
}
