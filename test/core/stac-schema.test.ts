import { strict as assert } from "node:assert";
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
    assert.match(result.coreErrors[0], /^\/id must NOT have fewer than 1 characters/);
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
});
