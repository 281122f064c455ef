import { strict as assert } from "node:assert";
import { isAbsolute, join, relative, sep } from "node:path";
import { planItem, type PlanOptions } from "../../src/core/assets/planner";
import { parseMultihash } from "../../src/core/assets/multihash";
import { extensionFor, displayHref } from "../../src/core/assets/naming";
import { checkLayout } from "../../src/core/assets/planner";
import { corpusDocuments, itemsOf, requireCorpus } from "../helpers/corpus";
import { assetItem } from "../helpers/asset-item";

const ROOT = join(sep === "/" ? "/tmp" : "C:\\tmp", "asset-plan-root");

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel);
}

const S2B_TEST_1 = { id: "S2B_TEST_1", collection: "sentinel-2-l2a", selfHref: "https://stac.example.com/collections/s2/items/S2B_TEST_1" };

function item(overrides: Record<string, unknown> = {}, assets: Record<string, unknown> = {}): Record<string, unknown> {
  return assetItem(S2B_TEST_1, assets, overrides);
}

describe("core/assets planner", function () {
  it("every Item of the corpus gets a plan with no collision and no path outside the folder (all assets, both namings)", function () {
    requireCorpus(this);
    let items = 0;
    let dollarValue = 0;
    for (const doc of corpusDocuments("valid")) {
      for (const it of itemsOf(doc.json)) {
        items += 1;
        const keys = Object.keys(it.assets as object);
        for (const naming of ["local-path", "key"] as const) {
          const plan = planItem(it, { root: ROOT, keys, naming, unverifiableChecksum: "keep" });
          const reported = plan.errors.reduce((n, e) => n + (Array.isArray(e.error.details?.keys) ? (e.error.details!.keys as unknown[]).length : 1), 0);
          assert.equal(plan.entries.length + reported, keys.length, `${doc.file}: every asset planned or reported`);
          for (const e of plan.errors) {
            assert.ok(["UNSUPPORTED", "RELATIVE_HREF"].includes(e.error.code), `${doc.file} ${e.key}: ${e.error.code} ${e.error.message}`);
            assert.match(e.error.message, new RegExp(`asset ${e.key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
          }
          for (const e of plan.entries) {
            assert.ok(inside(ROOT, e.path), `${doc.file} ${e.key}: ${e.path}`);
            assert.match(e.href, /^https?:\/\//);
            if (e.href.endsWith("/$value")) dollarValue += 1;
          }
          const paths = plan.entries.map((e) => e.path.toLowerCase());
          assert.equal(new Set(paths).size, paths.length, `${doc.file}: unique paths`);
        }
      }
    }
    assert.ok(items >= 15, `saw ${items} Items`);
    assert.ok(dollarValue >= 40, `Copernicus /$value hrefs planned: ${dollarValue}`);
  });

  it("the Usage-page case on the Copernicus Item: B02_10m,B03_10m,B04_10m via the https alternate, named by file:local_path", function () {
    requireCorpus(this);
    const doc = corpusDocuments("valid").find((d) => d.file.startsWith("cdse__search-page"))!;
    const it = itemsOf(doc.json)[0];
    const plan = planItem(it, { root: ROOT, keys: ["B02_10m", "B03_10m", "B04_10m"], unverifiableChecksum: "keep" });
    assert.deepEqual(plan.errors, []);
    assert.deepEqual(plan.entries.map((e) => e.key), ["B02_10m", "B03_10m", "B04_10m"]);
    for (const e of plan.entries) {
      assert.equal(e.alternate, "https");
      assert.match(e.href, /^https:\/\/download\.dataspace\.copernicus\.eu\/odata\/v1\/Products\(.*\/\$value$/);
      assert.match(e.originalHref, /^s3:\/\//);
      assert.ok(e.relativePath.startsWith(`sentinel-2-l2a/${it.id}/${it.id}.SAFE/GRANULE/`), e.relativePath);
      assert.ok(e.relativePath.endsWith(`_${e.key}.jp2`), e.relativePath);
      assert.equal(e.checksum?.kind, "supported");
      assert.equal((e.checksum as { algorithm: string }).algorithm, "sha3-256");
      assert.ok(e.size! > 100_000_000);
    }
    const byKey = planItem(it, { root: ROOT, keys: ["B02_10m", "Product", "thumbnail"], naming: "key", layout: "", unverifiableChecksum: "keep" });
    assert.deepEqual(byKey.entries.map((e) => e.relativePath), ["B02_10m.jp2", "Product.zip", "thumbnail.jpg"]);
  });

  it("selects every data asset by default, or by role, or by media type", function () {
    const assets = {
      visual: { href: "https://h.example/v.tif", type: "image/tiff; application=geotiff; profile=cloud-optimized", roles: ["visual"] },
      B02: { href: "https://h.example/b02.tif", type: "image/tiff; application=geotiff", roles: ["data", "reflectance"] },
      meta: { href: "https://h.example/m.xml", type: "application/xml", roles: ["metadata"] },
      thumb: { href: "https://h.example/t.png", type: "image/png", roles: ["thumbnail"] },
    };
    const keys = (o: Partial<PlanOptions>) => planItem(item({}, assets), { root: ROOT, ...o }).entries.map((e) => e.key);
    assert.deepEqual(keys({}), ["B02"]);
    assert.deepEqual(keys({ keys: [" ", ""] }), ["B02"]);
    assert.deepEqual(keys({ selectBy: "roles", roles: ["metadata", "thumbnail"] }), ["meta", "thumb"]);
    assert.deepEqual(keys({ selectBy: "types", mediaTypes: ["image/tiff"] }), ["visual", "B02"]);
    assert.deepEqual(keys({ selectBy: "types", mediaTypes: ["IMAGE/PNG"] }), ["thumb"]);
    const skipped = planItem(item({}, assets), { root: ROOT, keys: ["B02", "B99"] });
    assert.deepEqual(skipped.entries.map((e) => e.key), ["B02"]);
    assert.deepEqual(skipped.skipped, ["B99"]);
    assert.deepEqual(skipped.errors, []);
    const missing = planItem(item({}, assets), { root: ROOT, keys: ["B02", "B99"], missingKeys: "error" });
    assert.deepEqual(missing.entries.map((e) => e.key), ["B02"]);
    assert.equal(missing.errors[0].error.code, "NOT_FOUND");
    assert.match(missing.errors[0].error.message, /Item S2B_TEST_1, asset B99: no asset with this key/);
  });

  it("resolves relative hrefs against the self link, and reports them when there is none", function () {
    const assets = { data: { href: "./B02.tif", roles: ["data"] }, up: { href: "../other/B03.tif", roles: ["data"] } };
    const plan = planItem(item({}, assets), { root: ROOT });
    assert.deepEqual(plan.entries.map((e) => e.href), ["https://stac.example.com/collections/s2/items/B02.tif", "https://stac.example.com/collections/s2/other/B03.tif"]);
    const noSelf = planItem(item({ links: [] }, assets), { root: ROOT });
    assert.equal(noSelf.entries.length, 0);
    // One short error per Item, with its own code: the Item is valid STAC, it just cannot be resolved.
    assert.deepEqual(noSelf.errors.map((e) => e.error.code), ["RELATIVE_HREF"]);
    assert.match(noSelf.errors[0].error.message, /^Item S2B_TEST_1: 2 assets have relative hrefs \("\.\/B02\.tif", …\) and the Item has no http\(s\) self link/);
    assert.deepEqual(noSelf.errors[0].error.details?.keys, ["data", "up"]);
    const many = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`band-${i}`, { href: `./some/long/path/to/band-${i}.tif`, roles: ["data"] }]));
    const manyPlan = planItem(item({ links: [] }, many), { root: ROOT });
    assert.equal(manyPlan.errors.length, 1);
    assert.ok(manyPlan.errors[0].error.message.length < 400, `${manyPlan.errors[0].error.message.length} characters`);
    requireCorpus(this);
    const doc = corpusDocuments("valid").find((d) => d.file.startsWith("stac-asset__item_relative"))!;
    const corpusPlan = planItem(doc.json, { root: ROOT, keys: ["data"] });
    assert.equal(corpusPlan.errors[0].error.code, "RELATIVE_HREF");
  });

  it("refuses file:// with a clear reason, reports s3:// as unsupported, and other schemes too", function () {
    const assets = {
      local: { href: "file:///etc/passwd", roles: ["data"] },
      s3: { href: "s3://bucket/key.tif", roles: ["data"] },
      ftp: { href: "ftp://host/x.tif", roles: ["data"] },
      js: { href: "javascript:alert(1)", roles: ["data"] },
      win: { href: "C:\\data\\x.tif", roles: ["data"] },
      s3alt: { href: "s3://bucket/key.tif", roles: ["data"], alternate: { local: { href: "file:///x" }, https: { href: "https://h.example/key.tif" } } },
    };
    const plan = planItem(item({}, assets), { root: ROOT });
    const byKey = Object.fromEntries(plan.errors.map((e) => [e.key, e.error]));
    assert.match(byKey.local.message, /file:\/\/ hrefs from a remote document are refused/);
    assert.equal(byKey.local.code, "UNSUPPORTED");
    assert.match(byKey.s3.message, /s3:\/\/ is not supported yet/);
    assert.match(byKey.ftp.message, /ftp:\/\/ hrefs are not supported/);
    assert.equal(byKey.js.code, "UNSUPPORTED");
    assert.equal(byKey.win.code, "UNSAFE_PATH");
    assert.deepEqual(plan.entries.map((e) => [e.key, e.href, e.alternate]), [["s3alt", "https://h.example/key.tif", "https"]]);
  });

  it("finds collisions before any byte moves: same name, same name in another case, file vs folder, .part", function () {
    const assets = {
      a: { href: "https://h.example/1/$value", roles: ["data"], "file:local_path": "x/data.tif" },
      b: { href: "https://h.example/2/$value", roles: ["data"], "file:local_path": "x/DATA.tif" },
      c: { href: "https://h.example/3/$value", roles: ["data"], "file:local_path": "y" },
      d: { href: "https://h.example/4/$value", roles: ["data"], "file:local_path": "y/inner.tif" },
      e: { href: "https://h.example/5/$value", roles: ["data"], "file:local_path": "z.tif" },
      f: { href: "https://h.example/6/$value", roles: ["data"], "file:local_path": "z.tif.part" },
      ok1: { href: "https://h.example/7/$value", roles: ["data"] },
      ok2: { href: "https://h.example/8/$value", roles: ["data"] },
    };
    const plan = planItem(item({}, assets), { root: ROOT });
    assert.deepEqual(plan.entries.map((e) => e.relativePath), ["sentinel-2-l2a/S2B_TEST_1/ok1", "sentinel-2-l2a/S2B_TEST_1/ok2"]);
    assert.deepEqual(plan.errors.map((e) => e.key).sort(), ["a", "b", "c", "d", "e", "f"]);
    for (const e of plan.errors) assert.equal(e.error.code, "COLLISION");
    const keyNaming = planItem(item({}, { "B02.tif": { href: "https://h/1", roles: ["data"] }, B02: { href: "https://h/2", type: "image/tiff", roles: ["data"] } }), { root: ROOT });
    assert.deepEqual(keyNaming.errors.map((e) => e.error.code), ["COLLISION", "COLLISION"]);
  });

  const hostile: Array<{ name: string; id?: string; key?: string; localPath?: string; collection?: string }> = [
    { name: "id ../../etc", id: "../../etc" },
    { name: "id ..", id: ".." },
    { name: "id .", id: "." },
    { name: "id absolute", id: "/etc/passwd" },
    { name: "id drive letter", id: "C:\\Windows\\System32" },
    { name: "id NUL", id: "a\u0000b" },
    { name: "id backslash dots", id: "..\\..\\x" },
    { name: "id inner dots", id: "a/../../b" },
    { name: "id UNC", id: "\\\\server\\share" },
    { name: "id dots only", id: "...." },
    { name: "id with slash", id: "a/b" },
    { name: "id reserved", id: "con" },
    { name: "collection ..", collection: ".." },
    { name: "collection ../x", collection: "../x" },
    { name: "key ../evil", key: "../evil" },
    { name: "key absolute", key: "/abs" },
    { name: "key drive", key: "C:evil" },
    { name: "key NUL", key: "k\u0000" },
    { name: "key ..", key: ".." },
    { name: "key backslash", key: "a\\..\\..\\b" },
    { name: "key nested", key: "nested/key" },
    { name: "local_path ../../outside.tif", localPath: "../../outside.tif" },
    { name: "local_path absolute", localPath: "/etc/passwd" },
    { name: "local_path drive", localPath: "C:\\x.tif" },
    { name: "local_path inner ..", localPath: "a/../../b.tif" },
    { name: "local_path backslash ..", localPath: "sub\\..\\..\\x.tif" },
    { name: "local_path NUL", localPath: "\u0000.tif" },
    { name: "local_path . segment", localPath: "dir/./f.tif" },
    { name: "local_path trailing dot", localPath: "dir/f. " },
    { name: "local_path long", localPath: `${"x".repeat(400)}.tif` },
  ];

  it(`hostile ids, keys, collections and local paths (${hostile.length} cases) never plan a path outside the folder`, function () {
    for (const h of hostile) {
      const key = h.key ?? "data";
      const asset: Record<string, unknown> = { href: "https://h.example/a.tif", type: "image/tiff", roles: ["data"] };
      if (h.localPath !== undefined) asset["file:local_path"] = h.localPath;
      const it = item({ id: h.id ?? "ok-id", collection: h.collection ?? "c" }, { [key]: asset });
      const plan = planItem(it, { root: ROOT, keys: [key] });
      assert.equal(plan.entries.length + plan.errors.length, 1, h.name);
      for (const e of plan.entries) {
        assert.ok(inside(ROOT, e.path), `${h.name}: ${e.path}`);
        assert.ok(!e.relativePath.split("/").some((s) => s === ".." || s === "." || s.includes("\u0000") || s.includes("\\")), `${h.name}: ${e.relativePath}`);
      }
      for (const e of plan.errors) assert.equal(e.error.code, "UNSAFE_PATH", `${h.name}: ${e.error.message}`);
      if (h.localPath !== undefined && h.localPath.includes("..")) assert.equal(plan.entries[0]?.relativePath, "c/ok-id/data.tif", `${h.name}: falls back to the key`);
      if (h.id === ".." || h.id === "../../etc" || h.key === "../evil" || h.collection === "..") assert.equal(plan.errors.length, 1, `${h.name} is refused`);
    }
  });

  it("reads multihash checksums (sha2-256, sha2-512, sha3-256, md5, sha1) and calls other algorithms unsupported", function () {
    const cases: Array<[string, string | undefined]> = [
      [`1220${"ab".repeat(32)}`, "sha256"],
      [`1340${"ab".repeat(64)}`, "sha512"],
      [`1620${"ab".repeat(32)}`, "sha3-256"],
      [`d50110${"ab".repeat(16)}`, "md5"],
      [`1114${"ab".repeat(20)}`, "sha1"],
      [`90e40210${"ab".repeat(16)}`, undefined],
      [`1220${"ab".repeat(31)}`, undefined],
      ["not-hex", undefined],
    ];
    for (const [value, alg] of cases) {
      const parsed = parseMultihash(value)!;
      if (alg) assert.equal(parsed.kind === "supported" && parsed.nodeAlgorithm, alg, value);
      else assert.equal(parsed.kind, "unsupported", value);
    }
    assert.equal(parseMultihash(`1220${"AB".repeat(32)}`)?.kind, "supported");
    assert.equal(parseMultihash(undefined), undefined);
  });

  it("takes the extension from the media type, else from the href; hides query strings in messages", function () {
    assert.equal(extensionFor("image/tiff; application=geotiff; profile=cloud-optimized", "https://h/x"), ".tif");
    assert.equal(extensionFor("image/jp2", "https://h/Products(1)/$value"), ".jp2");
    assert.equal(extensionFor(undefined, "https://h/a/b.TIF?sig=1"), ".tif");
    assert.equal(extensionFor(undefined, "https://h/Products(1)/$value"), "");
    assert.equal(extensionFor("application/x-unknown", "https://h/a/b"), "");
    assert.equal(displayHref("https://user:pw@h.example/a/b.tif?sv=2024&sig=SECRET"), "https://h.example/a/b.tif?…");
  });

  it("folder layout: placeholders, an empty layout, and refusal of unknown placeholders or escaping templates", function () {
    const it = item({}, { d: { href: "https://h/d.tif", roles: ["data"] } });
    assert.equal(planItem(it, { root: ROOT, layout: "{year}/{month}/{day}/{id}" }).entries[0].relativePath, "2024/04/19/S2B_TEST_1/d.tif");
    assert.equal(planItem(it, { root: ROOT, layout: "" }).entries[0].relativePath, "d.tif");
    assert.equal(checkLayout("{collection}/{id}/"), undefined);
    assert.match(checkLayout("{bogus}/")!, /unknown placeholder \{bogus\}/);
    assert.match(checkLayout("../{id}")!, /'\.' or '\.\.' segment/);
    assert.match(checkLayout("/abs/{id}")!, /absolute/);
    assert.throws(() => planItem({ type: "Collection", id: "x" }, { root: ROOT }), /not a STAC Item/);
  });
});
