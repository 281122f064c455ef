import { strict as assert } from "node:assert";
import { Auth } from "../../src/core/auth";
import { Endpoints, validateEndpointSettings } from "../../src/core/endpoints";
import { inspect } from "node:util";

const settings = { apiUrl: "https://datasphere.astrodynamic.space", publishUrl: "wss://ws.datasphere.astrodynamic.space/publish/v1/" };

describe("core/endpoints", () => {
  it("builds the documented URLs", () => {
    const e = new Endpoints(settings);
    assert.equal(e.subscription("sentinel-2"), "https://datasphere.astrodynamic.space/subscription/v1/?package=sentinel-2");
    assert.equal(e.dataset("s2", "stream"), "https://datasphere.astrodynamic.space/api/dataset/v1/s2/stream/");
    assert.equal(
      e.dataset("s2", "paginate", { order: "old", from: "2024-01-01T00:00:00Z", to: "2024-02-01" }),
      "https://datasphere.astrodynamic.space/api/dataset/v1/s2/paginate/?order=old&from=2024-01-01T00%3A00%3A00Z&to=2024-02-01",
    );
    assert.equal(e.item("one-item"), "https://datasphere.astrodynamic.space/api/item/v1/one-item");
  });

  it("percent-encodes odd package names (spaces, '/', unicode, '?', '#')", () => {
    const e = new Endpoints({ ...settings, apiUrl: "http://127.0.0.1:9000/base" });
    assert.equal(e.item("a b/c"), "http://127.0.0.1:9000/base/api/item/v1/a%20b%2Fc");
    assert.equal(e.dataset("Sentinel ☀/x?y#z", "stream"), "http://127.0.0.1:9000/base/api/dataset/v1/Sentinel%20%E2%98%80%2Fx%3Fy%23z/stream/");
    assert.equal(e.subscription("a&b=c d"), "http://127.0.0.1:9000/base/subscription/v1/?package=a%26b%3Dc%20d");
    assert.equal(new URL(e.subscription("a&b=c d")).searchParams.get("package"), "a&b=c d");
  });

  it("rejects an empty package name", () => {
    const e = new Endpoints(settings);
    assert.throws(() => e.item(" "), /package name is empty/);
  });

  it("names the field that is wrong", () => {
    assert.deepEqual(validateEndpointSettings(settings), []);
    assert.match(validateEndpointSettings({ ...settings, apiUrl: "ftp://x" }).join(), /^apiUrl: must start with http/);
    assert.match(validateEndpointSettings({ ...settings, apiUrl: "nope" }).join(), /^apiUrl: "nope" is not a URL/);
    assert.match(validateEndpointSettings({ ...settings, publishUrl: "https://x/publish/v1/" }).join(), /^publishUrl: must start with ws/);
    assert.match(validateEndpointSettings({ ...settings, publishUrl: "wss://x/publish/v1" }).join(), /^publishUrl: must end with '\/'.*403/);
    assert.throws(() => new Endpoints({ ...settings, publishUrl: "wss://x/publish/v1" }), /INVALID_CONFIG|publishUrl/);
  });

  it("knows the Data Sphere origins", () => {
    const e = new Endpoints(settings);
    assert.equal(e.isDatasphereOrigin("https://datasphere.astrodynamic.space/x"), true);
    assert.equal(e.isDatasphereOrigin("wss://ws.datasphere.astrodynamic.space/publish/v1/"), true);
    assert.equal(e.isDatasphereOrigin("https://ws.datasphere.astrodynamic.space/other"), true);
    assert.equal(e.isDatasphereOrigin("http://datasphere.astrodynamic.space/x"), false);
    assert.equal(e.isDatasphereOrigin("https://datasphere.astrodynamic.space.evil.example/x"), false);
    assert.equal(e.isDatasphereOrigin("https://datasphere.astrodynamic.space:8443/x"), false);
  });
});

describe("core/auth", () => {
  const e = new Endpoints(settings);
  const auth = new Auth(e, "secret-token-123");

  it("sends the token only to Data Sphere origins and listed extra hosts", () => {
    assert.deepEqual(auth.headersFor("https://datasphere.astrodynamic.space/api/item/v1/x"), { authorization: "Token secret-token-123" });
    assert.deepEqual(auth.headersFor("https://assets.example.com/a.tif"), {});
    const wider = auth.withExtraOrigins(["https://assets.example.com"]);
    assert.deepEqual(wider.headersFor("https://assets.example.com/a.tif"), { authorization: "Token secret-token-123" });
    assert.deepEqual(wider.headersFor("https://other.example.com/a.tif"), {});
  });

  it("builds the documented auth message", () => {
    assert.deepEqual(JSON.parse(auth.authMessage()), { Authorization: "Token secret-token-123" });
  });

  it("the message-auth frame, like the header, goes only to a URL that may receive the token", () => {
    assert.deepEqual(JSON.parse(auth.authMessageFor(e.publishUrl) ?? "null"), { Authorization: "Token secret-token-123" });
    assert.equal(auth.authMessageFor("wss://elsewhere.example.com/publish/v1/"), undefined);
    assert.deepEqual(JSON.parse(auth.withExtraOrigins(["wss://elsewhere.example.com"]).authMessageFor("wss://elsewhere.example.com/publish/v1/") ?? "null"), { Authorization: "Token secret-token-123" });
  });

  it("never shows the token in string, JSON or inspect form", () => {
    for (const text of [String(auth), JSON.stringify({ auth }), inspect(auth), inspect({ nested: { auth } }, { depth: 5 })]) {
      assert.ok(!text.includes("secret-token-123"), text);
    }
  });

  it("sends nothing when there is no token", () => {
    assert.deepEqual(new Auth(e, "").headersFor("https://datasphere.astrodynamic.space/"), {});
  });
});
