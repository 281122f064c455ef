import { strict as assert } from "node:assert";
import { NumericSettings } from "../../src/nodes/shared/settings";

// Numeric node properties: empty means the default; a value that cannot be used gives the default
// after one warning that names the property, the value and what it takes.

function reader(def: Record<string, unknown>, vars: Record<string, string> = {}) {
  const warned: Array<[string, string, string, number]> = [];
  const env = (value: string | undefined) => (value ?? "").replace(/\$\{(\w+)\}/g, (_m, name: string) => vars[name] ?? "");
  const numbers = new NumericSettings(def, env, (property, value, expected, fallback) => warned.push([property, value, expected, fallback]));
  return { numbers, warned };
}

describe("NumericSettings (node properties)", () => {
  it("whole numbers: valid values as given, numbers or strings, `${VAR}` expanded; empty, absent or null is the default without a warning", () => {
    const { numbers, warned } = reader({ a: "250", b: 7, c: " 1 ", d: "${SIZE}", e: "", g: null, r: "0" }, { SIZE: "42" });
    assert.deepEqual(
      ["a", "b", "c", "d", "e", "f", "g"].map((p) => numbers.integer(p, 100)),
      [250, 7, 1, 42, 100, 100, 100],
    );
    assert.equal(numbers.integer("r", 4, 0), 0, "retries may be 0");
    assert.deepEqual(warned, []);
  });

  it("whole numbers: 0, -1, abc, 2.5, 1e400, NaN and an unset `${VAR}`'s text each give the default, with a warning naming them", () => {
    const bad = ["0", "-1", "abc", "2.5", "1e400", "NaN"];
    const def = Object.fromEntries(bad.map((v, i) => [`p${i}`, v]));
    const { numbers, warned } = reader({ ...def, fromEnv: "${SIZE}x" }, { SIZE: "12" });
    for (let i = 0; i < bad.length; i++) assert.equal(numbers.integer(`p${i}`, 100), 100, bad[i]);
    assert.equal(numbers.integer("fromEnv", 200), 200);
    assert.deepEqual(
      warned.map(([property, value]) => [property, value]),
      [...bad.map((v, i) => [`p${i}`, v]), ["fromEnv", "12x"]],
    );
    assert.ok(warned.every(([, , expected]) => expected === "a whole number >= 1"));
    assert.deepEqual(warned.map(([, , , fallback]) => fallback), [100, 100, 100, 100, 100, 100, 200]);
  });

  it("numbers: fractions accepted above the minimum; below it or not a number, the default with a warning", () => {
    const { numbers, warned } = reader({ a: "0.5", b: "0.05", c: "90", d: "1,5" });
    assert.equal(numbers.number("a", 90, 0.1), 0.5);
    assert.equal(numbers.number("b", 90, 0.1), 90);
    assert.equal(numbers.number("c", 30, 0.1), 90);
    assert.equal(numbers.number("d", 30, 0.1), 30);
    assert.deepEqual(warned, [
      ["b", "0.05", "a number >= 0.1", 90],
      ["d", "1,5", "a number >= 0.1", 30],
    ]);
  });

  it("a long value is cut to 40 characters in the warning", () => {
    const { numbers, warned } = reader({ a: "x".repeat(500) });
    assert.equal(numbers.integer("a", 5), 5);
    assert.equal(warned[0][1], "x".repeat(40));
  });
});
