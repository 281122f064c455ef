import { strict as assert } from "node:assert";
import { dirname, join } from "node:path";
import { nodeRedPath } from "./helpers/node-red";

/** Says which runtime this suite ran on, and fails when CI asked for another one. */
describe("runtime under test", () => {
  it("is the Node.js and Node-RED that CI asked for", () => {
    const nodeRedVersion: string = require(join(dirname(nodeRedPath), "..", "package.json")).version;
    console.log(`      Node ${process.version}, Node-RED ${nodeRedVersion} (${nodeRedPath})`);
    if (process.env.EXPECT_NODE_MAJOR) assert.equal(process.versions.node.split(".")[0], process.env.EXPECT_NODE_MAJOR);
    if (process.env.EXPECT_NODE_RED_MAJOR) assert.equal(nodeRedVersion.split(".")[0], process.env.EXPECT_NODE_RED_MAJOR);
  });
});
