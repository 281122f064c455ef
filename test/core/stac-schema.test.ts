import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { checkStac } from "../../src/core/stac";
import { createSchemaValidator } from "../../src/core/stac-schema";
import { corpusDocuments, corpusIndex, corpusRoot, requireCorpus, STAC_TYPES, type CorpusIndexEntry } from "../helpers/corpus";


describe("core/stac-schema (offline JSON Schema, schemas from the corpus folder)", function () {
  this.timeout(60_000);
  before(function () {
    requireCorpus(this);
  });

  it("agrees with the corpus index on every Item, Collection and Catalog: core verdict and extension failures", async () => {
    const index = corpusIndex();
    const validator = createSchemaValidator({ schemaDir: join(corpusRoot, "schemas") });
    let checked = 0;
    for (const kind of ["valid", "invalid"] as const) {
      for (const d of corpusDocuments(kind)) {
        const doc = d.json as Record<string, unknown>;
        if (!STAC_TYPES.has(doc.type as string)) continue;
        const entry = index.find((e) => e.file === `${kind}/${d.file}`) as CorpusIndexEntry;
        const result = await validator.validate(doc);
        const coreInvalid = entry.core.some((c) => c !== "valid");
        assert.equal(result.coreErrors.length > 0, coreInvalid, `${d.file}: core ${entry.core} vs ${result.coreErrors.join("; ")}`);
        if (!coreInvalid) {
          const failedExtensions = new Set(result.extensionErrors.map((e) => e.split(": ")[0].replace("https://stac-extensions.github.io/", "")));
          assert.deepEqual([...failedExtensions].sort(), [...entry.extension_invalid].sort(), d.file);
        }
        checked++;
      }
    }
    assert.ok(checked >= 45, `checked ${checked}`);
  });

  it("names the failing field, and marks schemas that are not in the folder as unchecked", async () => {
    const validator = createSchemaValidator({ schemaDir: join(corpusRoot, "schemas") });
    const doc = corpusDocuments("invalid").find((d) => d.file === "rustac__item_empty-id.json")!.json as Record<string, unknown>;
    const result = await validator.validate(doc);
    assert.match(result.coreErrors[0], /^id: must NOT have fewer than 1 characters \(schema https:\/\/schemas\.stacspec\.org\/v1\.1\.0\/item-spec\/json-schema\/item\.json\)$/);
    const unresolvable = corpusDocuments("invalid").find((d) => d.file === "stac-node-validator__catalog-with-invalid-schema.json")!.json as Record<string, unknown>;
    const r2 = await validator.validate(unresolvable);
    assert.deepEqual(r2.coreErrors, []);
    assert.deepEqual(r2.unchecked, ["https://example.org/invalid-schema.json"]);
    const empty = createSchemaValidator({ schemaDir: "/nonexistent-schema-dir" });
    const r3 = await empty.validate(doc);
    assert.deepEqual(r3.coreErrors, []);
    assert.deepEqual(r3.unchecked, ["https://schemas.stacspec.org/v1.1.0/item-spec/json-schema/item.json"]);
  });

  it("the light structural check accepts every valid Item/Collection/Catalog and catches the structural failures", () => {
    for (const d of corpusDocuments("valid")) {
      const doc = d.json as Record<string, unknown>;
      if (!STAC_TYPES.has(doc.type as string)) continue;
      assert.deepEqual(checkStac(doc).problems, [], d.file);
    }
    const caught = corpusDocuments("invalid").filter((d) => checkStac(d.json).problems.length > 0).map((d) => d.file).sort();
    assert.deepEqual(caught, [
      "openeo__cdse-search-page_S2B_MSIL2A_20200322T074609_T36NYH_storage-ext-errors.json",
      "pystac-client__collection_csdap-planet_empty-extent_no-type.json",
      "rustac__item_empty-id.json",
      "stac-js__feature_not-stac.json",
      "stac-node-validator__invalid-catalog_missing-links.json",
      "stac-task__cirrus-payload_earth-search-sentinel-2-l2a_s3-jp2.json",
      "stac-validator__v100_bad-collection_missing-id.json",
      "stac-validator__v100_bad-item_missing-id.json",
    ]);
  });

  it("says what is really wrong: a collection field without a rel=collection link, not `/collection must NOT be valid`", async () => {
    const validator = createSchemaValidator({ schemaDir: join(corpusRoot, "schemas") });
    const doc = corpusDocuments("invalid").find((d) => d.file.includes("collection-without-link"))!.json as Record<string, unknown>;
    const result = await validator.validate(doc);
    assert.match(result.coreErrors[0], /^collection: the Item names collection "sentinel-2-l2a" but has no link with rel "collection"; add \{"rel": "collection"/);
    assert.ok(result.coreErrors.every((e) => !/must NOT be valid/.test(e)), result.coreErrors.join("; "));
    const badIri = { ...(corpusDocuments("valid").find((d) => d.file === "stac-spec-v1.1.0__core-item.json")!.json as Record<string, unknown>), stac_extensions: ["not a url"] };
    const r2 = await validator.validate(badIri);
    assert.match(r2.coreErrors[0], /^stac_extensions\[0\]: must be an absolute URL \(format iri\)/);
  });

  it("legacy STAC (1.0.0-beta.2, rc) is validated as a migrated copy, and the user's document is left as it was", async () => {
    const validator = createSchemaValidator({ schemaDir: join(corpusRoot, "schemas") });
    const legacy = corpusDocuments("valid").filter((d) => /"stac_version":\s*"1\.0\.0-(beta|rc)/.test(d.text) && STAC_TYPES.has((d.json as { type?: string }).type ?? ""));
    assert.ok(legacy.length >= 2, `legacy documents: ${legacy.length}`);
    for (const d of legacy) {
      const doc = d.json as Record<string, unknown>;
      const before = structuredClone(doc);
      const result = await validator.validate(doc);
      assert.equal(result.migratedFrom, doc.stac_version, d.file);
      assert.match(result.coreSchema!.uri, /\/v1\.1\.0\//, d.file);
      assert.deepEqual(result.coreErrors, [], `${d.file}: ${result.coreErrors.join("; ")}`);
      assert.equal(result.cannotValidate, undefined);
      assert.deepEqual(doc, before, `${d.file} unchanged`);
    }
    const rc = { ...(legacy[0].json as Record<string, unknown>), stac_version: "1.0.0-rc.4" };
    assert.equal((await validator.validate(rc)).migratedFrom, "1.0.0-rc.4");
    const future = await validator.validate({ ...(legacy[0].json as Record<string, unknown>), stac_version: "9.9.9" });
    assert.match(future.cannotValidate!, /no core schema for STAC 9\.9\.9 in the schema folder/);
  });

  it("the schema cache is bounded (LRU): 50,000 extension URLs named by payloads hold at most 5 x maxCached entries", async () => {
    const validator = createSchemaValidator({ schemaDir: join(corpusRoot, "schemas"), maxCached: 16 });
    const base = corpusDocuments("valid").find((d) => d.file === "stac-spec-v1.1.0__core-item.json")!.json as Record<string, unknown>;
    for (let i = 0; i < 2000; i += 1) {
      const urls = Array.from({ length: 25 }, (_, j) => `https://evil.example/${i}/${j}/schema.json`);
      const result = await validator.validate({ ...base, stac_extensions: urls });
      assert.equal(result.unchecked.length, 25);
      assert.ok(validator.cached <= 16 * 5, `cache holds ${validator.cached}`);
    }
    // The core schema still validates after its entry was evicted and compiled again.
    assert.deepEqual((await validator.validate(base)).coreErrors, []);
  });

  it("ajv, ajv-formats and stac-migrate are loaded only once a validator is made (a flow with the check off never loads them)", () => {
    const module = join(__dirname, "../../src/core/stac-schema.js");
    const script = `
      const loaded = () => Object.keys(require.cache).filter((k) => /node_modules[\\/](ajv|ajv-formats|@radiantearth[\\/]stac-migrate)[\\/]/.test(k)).map((k) => k.split(/node_modules[\\/]/).pop().split(/[\\/]/)[0]);
      const { createSchemaValidator } = require(${JSON.stringify(module)});
      const before = new Set(loaded());
      const v = createSchemaValidator({ schemaDir: ${JSON.stringify(join(corpusRoot, "schemas"))} });
      v.validate({ type: "Feature", stac_version: "1.0.0-beta.2", id: "x", links: [], assets: {}, geometry: null, properties: { datetime: null } }).then(() => {
        console.log(JSON.stringify({ before: [...before], after: [...new Set(loaded())].sort() }));
      });`;
    const out = JSON.parse(execFileSync(process.execPath, ["-e", script], { encoding: "utf8" }));
    assert.deepEqual(out.before, []);
    assert.deepEqual(out.after, ["@radiantearth", "ajv", "ajv-formats"]);
  });
});
