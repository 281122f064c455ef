import { readFile } from "node:fs/promises";
import { join, resolve, sep } from "node:path";
import Ajv, { type ErrorObject, type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";

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
  /** Problems against extension schemas, each prefixed by the extension URL. */
  extensionErrors: string[];
  /** Schemas that could not be checked (not in the folder, or a short legacy extension name). */
  unchecked: string[];
}

export interface SchemaValidator {
  validate(doc: Record<string, unknown>): Promise<SchemaResult>;
}

const MAX_ERRORS = 4;

/** Where the core schema of each STAC `type` lives under https://schemas.stacspec.org/v<version>/. */
const KIND_SCHEMA_PATH: Readonly<Record<string, string>> = {
  Feature: "item-spec/json-schema/item.json",
  Collection: "collection-spec/json-schema/collection.json",
  Catalog: "catalog-spec/json-schema/catalog.json",
};

export function createSchemaValidator(options: { schemaDir: string }): SchemaValidator {
  const root = resolve(options.schemaDir);
  const ajv = new Ajv({ strict: false, allErrors: false, loadSchema: (uri) => loadNested(uri) });
  addFormats(ajv);
  ajv.addFormat("iri", (v: string) => isIri(v));
  ajv.addFormat("iri-reference", (v: string) => typeof v === "string" && v.length > 0);
  const compiled = new Map<string, Promise<ValidateFunction | undefined>>();

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

  function validatorFor(uri: string): Promise<ValidateFunction | undefined> {
    let p = compiled.get(uri);
    if (!p) {
      p = (async () => {
        const existing = ajv.getSchema(uri);
        if (existing) return existing;
        const schema = await readSchema(uri);
        if (!schema) return undefined;
        return ajv.compileAsync({ ...schema, $id: (schema.$id as string | undefined) ?? uri });
      })().catch(() => undefined);
      compiled.set(uri, p);
    }
    return p;
  }

  return {
    async validate(doc) {
      const result: SchemaResult = { coreErrors: [], extensionErrors: [], unchecked: [] };
      const kindPath = typeof doc.type === "string" ? KIND_SCHEMA_PATH[doc.type] : undefined;
      const version = typeof doc.stac_version === "string" ? doc.stac_version : "";
      if (kindPath && version) {
        const uri = `https://schemas.stacspec.org/v${version}/${kindPath}`;
        const validate = await validatorFor(uri);
        if (!validate) result.unchecked.push(uri);
        else if (!validate(doc)) result.coreErrors.push(...describe(validate.errors));
      } else {
        result.coreErrors.push("type or stac_version missing: no core schema applies");
      }
      const extensions = Array.isArray(doc.stac_extensions) ? doc.stac_extensions : [];
      for (const ext of extensions) {
        if (typeof ext !== "string" || !/^https?:\/\//.test(ext)) {
          result.unchecked.push(String(ext));
          continue;
        }
        const validate = await validatorFor(ext);
        if (!validate) result.unchecked.push(ext);
        else if (!validate(doc)) result.extensionErrors.push(...describe(validate.errors).map((e) => `${ext}: ${e}`));
      }
      return result;
    },
  };
}

function describe(errors: ErrorObject[] | null | undefined): string[] {
  const out: string[] = [];
  for (const e of errors ?? []) {
    const text = `${e.instancePath || "/"} ${e.message ?? "is invalid"}${e.params && "allowedValues" in e.params ? ` (${(e.params.allowedValues as unknown[]).join(", ")})` : ""}`;
    if (!out.includes(text)) out.push(text);
    if (out.length >= MAX_ERRORS) break;
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
