import { strict as assert } from "node:assert";
import { DatasphereError, isRetryable, toDatasphereError } from "../../src/core/errors";

function errno(code: string, message = code): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code, syscall: "read" });
}

describe("core/errors classification", () => {
  it("connection faults are NETWORK and retried; file faults are IO; aborts and timeouts keep their codes", () => {
    const cases: Array<[unknown, string, boolean]> = [
      [errno("ECONNRESET"), "NETWORK", true],
      [errno("ECONNREFUSED"), "NETWORK", true],
      [Object.assign(new Error("other side closed"), { name: "SocketError", code: "UND_ERR_SOCKET" }), "NETWORK", true],
      [Object.assign(new TypeError("fetch failed"), { cause: errno("ENOTFOUND") }), "NETWORK", true],
      [errno("ENOSPC"), "IO", false],
      [Object.assign(new Error("headers"), { code: "UND_ERR_HEADERS_TIMEOUT" }), "TIMEOUT", true],
      [Object.assign(new Error("The operation was aborted"), { name: "AbortError" }), "ABORTED", false],
      [new DatasphereError("AUTH", "token rejected"), "AUTH", false],
    ];
    for (const [error, code, retryable] of cases) {
      const typed = toDatasphereError(error, "request");
      assert.equal(typed.code, code, String(error));
      assert.equal(isRetryable(error), retryable, `${String(error)} retryable`);
    }
  });

  it("a bug (TypeError, a crashed worker, a Node argument error) is INTERNAL, says so, and is not retried", () => {
    const bugs = [
      new TypeError("Cannot read properties of undefined (reading 'items')"),
      new Error("hash worker stopped"),
      Object.assign(new TypeError('The "path" argument must be of type string'), { code: "ERR_INVALID_ARG_TYPE" }),
      "a thrown string",
    ];
    for (const bug of bugs) {
      const typed = toDatasphereError(bug, "download");
      assert.equal(typed.code, "INTERNAL", String(bug));
      assert.match(typed.message, /^download: internal error \(a bug/);
      assert.equal(isRetryable(bug), false, String(bug));
    }
    assert.match(toDatasphereError(bugs[0], "x").message, /TypeError: Cannot read properties of undefined/);
  });
});
