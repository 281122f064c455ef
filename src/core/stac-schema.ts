import { readFile } from "node:fs/promises";
import { join, resolve, sep } from "node:path";
import type AjvClass from "ajv";
import type { ErrorObject, ValidateFunction } from "ajv";

/**
 * Optional full JSON-Schema validation of STAC objects, offline: schemas are read from a folder laid
 * out like their URLs (`<dir>/schemas.stacspec.org/v1.0.0/item-spec/json-schema/item.json`,
 * `<dir>/stac-extensions.github.io/eo/v1.1.0/schema.json`, `<dir>/geojson.org/schema/Feature.json`).
 * Nothing is fetched from the network and no schema ships with the package.
 */
export type SchemaCheckMode = "off" | "warn" | "reject";

export interface SchemaResult {
  /** Problems against the core schema of the object's stac_version (empty = passes or unchecked). */
  coreErrors: string[];
  /** Why the core schema could not be checked at all (no schema for the version, migration failed); reject mode refuses the object. */
  cannotValidate?: string;
  /** The legacy stac_version a copy was migrated from (with @radiantearth/stac-migrate) before validation. */
  migratedFrom?: string;
  /** The core schema used: its URL and the file it was read from. */
  coreSchema?: { uri: string; file: string };
  /** Problems against extension schemas, each prefixed by the extension URL. */
  extensionErrors: string[];
  /** Schemas that could not be checked (not in the folder, or a short legacy extension name). */
  unchecked: string[];
}

export interface SchemaValidator {
  validate(doc: Record<string, unknown>): Promise<SchemaResult>;
  /** Entries held in the caches now: at most `maxCached` schemas and 4 x `maxCached` missing URLs. */
  readonly cached: number;
}

const MAX_ERRORS = 4;
/** Compiled (or known-missing) schemas kept: a payload naming 50,000 extension URLs cannot grow the cache past this. */
const DEFAULT_MAX_CACHED = 64;
/** Extension schemas checked per document; the rest are reported unchecked. */
const MAX_EXTENSIONS = 32;

/** Where the core schema of each STAC `type` lives under https://schemas.stacspec.org/v<version>/. */
const KIND_SCHEMA_PATH: Readonly<Record<string, string>> = {
  Feature: "item-spec/json-schema/item.json",
  Collection: "collection-spec/json-schema/collection.json",
  Catalog: "catalog-spec/json-schema/catalog.json",
};

/**
 * ajv, ajv-formats and stac-migrate are loaded here, on the first validator, so a flow that never
 * turns the schema check on never loads them.
 */
export function createSchemaValidator(options: { schemaDir: string; maxCached?: number }): SchemaValidator {
  const Ajv = (require("ajv") as { default: typeof AjvClass }).default;
  const addFormats = (require("ajv-formats") as { default: (ajv: AjvClass) => void }).default;
  const root = resolve(options.schemaDir);
  const maxCached = Math.max(1, options.maxCached ?? DEFAULT_MAX_CACHED);
  const ajv = new Ajv({ strict: false, allErrors: false, loadSchema: (uri) => loadNested(uri) });
  addFormats(ajv);
  ajv.addFormat("iri", (v: string) => isIri(v));
  ajv.addFormat("iri-reference", (v: string) => typeof v === "string" && v.length > 0);

  function pathFor(uri: string): string | undefined {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      return undefined;
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") return undefined;
    const file = resolve(join(root, url.host, decodeURIComponent(url.pathname)));
    return file.startsWith(root + sep) ? file : undefined;
  }

  async function readSchema(uri: string): Promise<Record<string, unknown> | undefined> {
    const file = pathFor(uri.split("#")[0]);
    if (!file) return undefined;
    try {
      return JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  }

  /** A schema referenced from inside another that is not in the folder counts as `{}` (accept). */
  async function loadNested(uri: string): Promise<Record<string, unknown>> {
    return (await readSchema(uri)) ?? { $id: uri };
  }

  /** Schemas found in the folder, by file, and URLs known to be missing: two LRUs, so naming many missing URLs never evicts a real schema. */
  const found = new Lru<Promise<ValidateFunction | undefined>>(maxCached);
  const missing = new Lru<true>(maxCached * 4);

  async function validatorFor(uri: string): Promise<ValidateFunction | undefined> {
    const file = pathFor(uri.split("#")[0]);
    if (!file || missing.get(file)) return undefined;
    let p = found.get(file);
    if (!p) {
      p = (async () => {
        const schema = await readSchema(uri);
        if (!schema) return undefined;
        const id = (schema.$id as string | undefined) ?? uri;
        const existing = ajv.getSchema(id);
        if (existing) return existing;
        return ajv.compileAsync({ ...schema, $id: id });
      })().catch(() => undefined);
      const evicted = found.set(file, p);
      // ajv keeps every compiled schema too: drop an evicted one there as well.
      if (evicted) void evicted.then((v) => removeFromAjv(v));
    }
    const validate = await p;
    if (!validate) {
      found.delete(file);
      missing.set(file, true);
    }
    return validate;
  }

  function removeFromAjv(v: ValidateFunction | undefined): void {
    const id = (v?.schema as { $id?: string } | undefined)?.$id;
    if (!id) return;
    try {
      ajv.removeSchema(id);
    } catch {
      // already gone
    }
  }

  async function validateCore(doc: Record<string, unknown>, result: SchemaResult): Promise<void> {
    const kindPath = typeof doc.type === "string" ? KIND_SCHEMA_PATH[doc.type] : undefined;
    const version = typeof doc.stac_version === "string" ? doc.stac_version : "";
    if (!kindPath || !version) {
      result.coreErrors.push("type or stac_version missing: no core schema applies");
      return;
    }
    const uri = `https://schemas.stacspec.org/v${version}/${kindPath}`;
    const validate = await validatorFor(uri);
    if (!validate) {
      result.unchecked.push(uri);
      result.cannotValidate = `no core schema for STAC ${version} in the schema folder (looked for ${pathFor(uri) ?? uri})`;
      return;
    }
    result.coreSchema = { uri, file: pathFor(uri) ?? uri };
    if (!validate(doc)) result.coreErrors.push(...describe(validate.errors, doc, uri));
  }

  return {
    get cached() {
      return found.size + missing.size;
    },
    async validate(original) {
      const result: SchemaResult = { coreErrors: [], extensionErrors: [], unchecked: [] };
      let doc = original;
      const version = typeof original.stac_version === "string" ? original.stac_version : "";
      if (isLegacyVersion(version)) {
        try {
          doc = migrateCopy(original);
          result.migratedFrom = version;
        } catch (error) {
          result.cannotValidate = `STAC ${version} could not be migrated for validation (${(error as Error).message})`;
          return result;
        }
      }
      await validateCore(doc, result);
      const extensions = Array.isArray(doc.stac_extensions) ? doc.stac_extensions : [];
      for (const [i, ext] of extensions.entries()) {
        if (typeof ext !== "string" || !/^https?:\/\//.test(ext) || i >= MAX_EXTENSIONS) {
          result.unchecked.push(String(ext).slice(0, 200));
          continue;
        }
        const validate = await validatorFor(ext);
        if (!validate) result.unchecked.push(ext);
        else if (!validate(doc)) result.extensionErrors.push(...describe(validate.errors, doc, ext).map((e) => `${ext}: ${e}`));
      }
      return result;
    },
  };
}

/** A Map in least-recently-used order (a hit is re-inserted); `set` returns the value it evicted. */
class Lru<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}

  get size(): number {
    return this.map.size;
  }

  get(key: string): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  set(key: string, value: V): V | undefined {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size <= this.max) return undefined;
    const [oldest, evicted] = this.map.entries().next().value as [string, V];
    this.map.delete(oldest);
    return evicted;
  }

  delete(key: string): void {
    this.map.delete(key);
  }
}

/** STAC before 1.0.0 (0.x, 1.0.0-beta.*, 1.0.0-rc.*): validated as a migrated copy. */
export function isLegacyVersion(version: string): boolean {
  const m = /^(\d+)\.(\d+)\.(\d+)(-.+)?$/.exec(version.trim());
  if (!m) return false;
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return major < 1 || (major === 1 && minor === 0 && patch === 0 && m[4] !== undefined);
}

/** A migrated deep copy: what is published stays the user's document. */
function migrateCopy(doc: Record<string, unknown>): Record<string, unknown> {
  const migrate = require("@radiantearth/stac-migrate") as { stac(obj: unknown, updateVersionNumber?: boolean): Record<string, unknown> };
  return migrate.stac(structuredClone(doc), true);
}

/** Validator errors as sentences: which field, what was expected, and which schema said so. */
function describe(errors: ErrorObject[] | null | undefined, doc: Record<string, unknown>, schemaUri: string): string[] {
  const out: string[] = [];
  const from = ` (schema ${schemaUri})`;
  for (const e of errors ?? []) {
    if (e.keyword === "if" || e.keyword === "anyOf" || e.keyword === "oneOf" || e.keyword === "allOf") continue;
    const text = explain(e, doc) + from;
    if (!out.includes(text)) out.push(text);
    if (out.length >= MAX_ERRORS) break;
  }
  if (out.length === 0 && errors && errors.length > 0) out.push(explain(errors[0], doc) + from);
  return out;
}

function explain(e: ErrorObject, doc: Record<string, unknown>): string {
  const field = fieldName(e.instancePath);
  const params = e.params as Record<string, unknown>;
  if (e.instancePath === "/collection" && e.keyword === "not") {
    const links = Array.isArray(doc.links) ? (doc.links as Array<{ rel?: unknown }>) : [];
    if (!links.some((l) => l && l.rel === "collection")) {
      return `collection: the Item names collection "${String(doc.collection)}" but has no link with rel "collection"; add {"rel": "collection", "href": <the Collection's URL>} to links, or remove the collection field`;
    }
  }
  switch (e.keyword) {
    case "required":
      return `${fieldName(`${e.instancePath}/${String(params.missingProperty)}`)}: missing (required)`;
    case "format":
      return `${field}: must be ${params.format === "iri" ? "an absolute URL (format iri)" : params.format === "iri-reference" ? "a non-empty URL or relative reference (format iri-reference)" : `in format "${String(params.format)}"`}`;
    case "const":
      return `${field}: must be ${JSON.stringify(params.allowedValue)}`;
    case "enum":
      return `${field}: must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`;
    case "type":
      return `${field}: must be of type ${String(params.type)}`;
    case "additionalProperties":
      return `${field}: unexpected property "${String(params.additionalProperty)}"`;
    case "not":
      return `${field}: must not be present here`;
    default:
      return `${field}: ${e.message ?? "is invalid"}`;
  }
}

/** `/properties/eo:bands/0/name` -> `properties.eo:bands[0].name`; the root is "(document)". */
function fieldName(pointer: string): string {
  if (!pointer) return "(document)";
  let out = "";
  for (const raw of pointer.split("/").slice(1)) {
    const part = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    out += /^\d+$/.test(part) ? `[${part}]` : out === "" ? part : `.${part}`;
  }
  return out;
}

/** An absolute IRI with a host, or a file: path (the rule the corpus was checked with). */
function isIri(value: string): boolean {
  if (typeof value !== "string") return false;
  try {
    const url = new URL(value);
    return url.protocol === "file:" || url.host.length > 0;
  } catch {
    return false;
  }
}

/** What publish does with a schema result: refuse (reject mode), warnings to log, and a note for a migrated legacy document. */
export interface SchemaVerdict {
  reject?: string;
  /** Core-schema problems (and "cannot be validated") in warn mode. */
  warnings: string[];
  extensionWarnings: string[];
  note?: string;
}

export function schemaVerdict(result: SchemaResult, mode: SchemaCheckMode, label: string): SchemaVerdict {
  const verdict: SchemaVerdict = { warnings: [], extensionWarnings: [] };
  const how = result.migratedFrom ? ` (validated as migrated from ${result.migratedFrom})` : "";
  if (result.cannotValidate) {
    const text = `${label} cannot be validated: ${result.cannotValidate}`;
    if (mode === "reject") verdict.reject = `${text}; add the schema to the schema folder, or set the schema check to warn`;
    else verdict.warnings.push(text);
  }
  if (result.coreErrors.length > 0) {
    const text = `${label}${how}: ${result.coreErrors.join("; ")}`;
    if (mode === "reject") verdict.reject ??= text;
    else verdict.warnings.push(text);
  }
  if (result.extensionErrors.length > 0) verdict.extensionWarnings.push(`${label}${how}: ${result.extensionErrors.join("; ")}`);
  if (result.migratedFrom && !verdict.reject) verdict.note = `${label} validated as migrated from ${result.migratedFrom}`;
  return verdict;
}
