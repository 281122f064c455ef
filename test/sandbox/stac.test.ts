import { strict as assert } from "node:assert";
import { join } from "node:path";
import { createSchemaValidator } from "../../src/core/stac-schema";
import { startSandbox, type Sandbox } from "../../src/sandbox";
import { corpusRoot, requireCorpus } from "../helpers/corpus";
import { getText } from "./clients";

const AUTH = { authorization: "Token sandbox-token" };

describe("sandbox Items are valid STAC", function () {
  let sb: Sandbox;

  before(async function () {
    requireCorpus(this);
    sb = await startSandbox({ port: 0, seed: 3 });
    sb.addDataset("landsat-1.1", { count: 5, mission: "landsat", stacVersion: "1.1.0" });
  });
  after(async () => {
    await sb?.close();
  });

  async function items(pkg: string, count: number): Promise<Record<string, unknown>[]> {
    const r = await getText(`${sb.url}/api/dataset/v1/${pkg}/stream/?order=old`, AUTH);
    return r.text.split("\n").filter(Boolean).slice(0, count).map((l) => JSON.parse(l));
  }

  for (const [pkg, version] of [
    ["sentinel-2-l2a-sample", "1.0.0"],
    ["landsat-c2-l2-sample", "1.0.0"],
    ["sentinel-2-l2a-sample-stac-1.1", "1.1.0"],
    ["landsat-1.1", "1.1.0"],
  ] as const) {
    it(`${pkg}: STAC ${version} core and every declared extension schema pass`, async () => {
      const validator = createSchemaValidator({ schemaDir: join(corpusRoot, "schemas") });
      for (const item of await items(pkg, 5)) {
        assert.equal(item.stac_version, version);
        const result = await validator.validate(item);
        assert.deepEqual(result.coreErrors, [], `${String(item.id)} core`);
        assert.deepEqual(result.extensionErrors, [], `${String(item.id)} extensions`);
        assert.deepEqual(result.unchecked, [], `${String(item.id)} unchecked`);
      }
    });
  }

  it("the item packages are valid too", async () => {
    const validator = createSchemaValidator({ schemaDir: join(corpusRoot, "schemas") });
    for (const pkg of ["sentinel-2-l2a-example", "landsat-c2-l2-example"]) {
      const item = JSON.parse((await getText(`${sb.url}/api/item/v1/${pkg}`, AUTH)).text);
      const result = await validator.validate(item);
      assert.deepEqual([...result.coreErrors, ...result.extensionErrors, ...result.unchecked], [], pkg);
    }
  });

  it("Items are a pure function of (seed, package, index): same seed same Item, other seed other Item", async () => {
    const a = await sb.datasetItem("sentinel-2-l2a-sample", 42);
    const b = await sb.datasetItem("sentinel-2-l2a-sample", 42);
    assert.deepEqual(a, b);
    const other = await startSandbox({ port: 0, seed: 4 });
    try {
      const c = await other.datasetItem("sentinel-2-l2a-sample", 42);
      assert.notEqual(c.id, a.id);
      assert.equal((c.properties as { datetime: string }).datetime, (a.properties as { datetime: string }).datetime, "datetime is index arithmetic");
    } finally {
      await other.close();
    }
  });
});
