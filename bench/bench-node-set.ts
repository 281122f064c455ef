import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Writes a node set of bench-only nodes into `userDir`/bench-nodes: `name`.js holding `js`, and `name`.html
 * registering each of `types` in the editor. Returns the folder, for Node-RED's nodesDir.
 */
export function writeBenchNodeSet(userDir: string, name: string, js: string, types: string[]): string {
  const dir = join(userDir, "bench-nodes");
  mkdirSync(dir);
  writeFileSync(join(dir, `${name}.js`), js);
  writeFileSync(join(dir, `${name}.html`), types.map((t) => `<script type="text/javascript">RED.nodes.registerType('${t}',{category:'function',defaults:{},inputs:1,outputs:1});</script>`).join("\n"));
  return dir;
}
