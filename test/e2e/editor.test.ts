import { strict as assert } from "node:assert";
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { startSandbox, type Sandbox } from "../../src/sandbox";
import { MOSQUITTO, requireMosquitto, startMosquitto, type Mosquitto } from "../helpers/mosquitto";
import { startNodeRed, type NodeRedProcess } from "../helpers/node-red-process";
import { waitFor } from "../helpers/node-red";
import { repoRoot } from "../helpers/paths";
import { launchChromium, requireChromium } from "./browser";
import { openEditor as openEditorPage } from "./open-editor";
import { importExampleFromMenu } from "./editor-import";
import { freshUserDir, linkCheckout, PACKAGE_NAME, removeDir } from "./support";

// Globals of the page, used inside page.evaluate callbacks (the project compiles without the DOM lib).
declare const window: any;
declare const document: any;

const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8"));
const TYPES: string[] = Object.keys(pkg["node-red"].nodes);
/** Config nodes (datasphere-config, datasphere-stac-api), as their editor files declare them. */
const CONFIG_TYPES = new Set(TYPES.filter((t) => /category:\s*'config'/.test(readFileSync(join(repoRoot, "nodes", `${t}.html`), "utf8"))));
const isConfigType = (t: string) => CONFIG_TYPES.has(t);
const EXAMPLES: string[] = readdirSync(join(repoRoot, "examples")).filter((f) => f.endsWith(".json")).map((f) => f.replace(/\.json$/, "")).sort();
const ARTIFACTS = join(repoRoot, "test-artifacts");
const STORED_TOKEN = "stored-token-must-never-reach-the-editor";
const SANDBOX_TOKEN = "sandbox-token";

/** The h3 headings of a node's help as written in its help file. */
function helpHeadings(type: string): string[] {
  for (const file of [join(repoRoot, "nodes", "locales", "en-US", `${type}.html`), join(repoRoot, "nodes", `${type}.html`)]) {
    if (!existsSync(file)) continue;
    const m = new RegExp(`data-help-name=["']${type}["'][^>]*>([\\s\\S]*?)</script>`).exec(readFileSync(file, "utf8"));
    if (m) return [...m[1].matchAll(/<h3[^>]*>([\s\S]*?)<\/h3>/g)].map((h) => h[1].replace(/<[^>]+>/g, "").trim());
  }
  return [];
}

describe("e2e: the editor in a real browser", function () {
  this.timeout(300_000);
  let userDir: string | undefined;
  let sandbox: Sandbox | undefined;
  let broker: Mosquitto | undefined;
  let nr: NodeRedProcess | undefined;
  let context: BrowserContext | undefined;
  let profile: string | undefined;
  let external: string[] = [];
  let page: Page;
  let consoleErrors: string[] = [];

  before(async function () {
    requireChromium(this);
    sandbox = await startSandbox({ port: 0, token: SANDBOX_TOKEN, seed: 1, rate: 1 });
    if (existsSync(MOSQUITTO)) broker = await startMosquitto();
    userDir = freshUserDir("editor");
    linkCheckout(userDir);
    // The map example's node, installed into the user directory as a user would (Node-RED 4 and 5 alike).
    symlinkSync(join(repoRoot, "node_modules", "node-red-contrib-web-worldmap"), join(userDir, "node_modules", "node-red-contrib-web-worldmap"), "dir");
    nr = await startNodeRed({
      userDir,
      flows: [
        { id: "seed-tab", type: "tab", label: "seeded" },
        { id: "seed-cfg", type: "datasphere-config", name: "seeded", apiUrl: sandbox.url, publishUrl: sandbox.publishUrl, authMode: "header" },
      ],
      credentials: { "seed-cfg": { token: STORED_TOKEN } },
      settings: { editorTheme: { palette: { catalogues: [] } } },
      env: { DATASPHERE_API_URL: sandbox.url, DATASPHERE_PUBLISH_URL: sandbox.publishUrl, DATASPHERE_TOKEN: SANDBOX_TOKEN, STAC_API_URL: sandbox.stacApi.url },
    });
    ({ context, profile, external } = await launchChromium());
    page = context.pages()[0] ?? (await context.newPage());
    page.on("console", (m) => {
      if (m.type() === "error") consoleErrors.push(`console.error: ${m.text()}`);
    });
    page.on("pageerror", (e) => consoleErrors.push(`page error: ${e.message}`));
    await openEditor();
  });

  after(async () => {
    await context?.close();
    await nr?.stop();
    await sandbox?.close();
    await broker?.close();
    removeDir(userDir);
    removeDir(profile);
  });

  async function openEditor(): Promise<void> {
    await openEditorPage(page, nr!.url, TYPES.filter((t) => existsSync(join(repoRoot, "nodes", `${t}.html`))), () => nr!.log());
  }

  function takeConsoleErrors(): string[] {
    const taken = consoleErrors;
    consoleErrors = [];
    return taken;
  }

  const nonConfig = () => TYPES.filter((t) => !isConfigType(t));

  it("shows the nodes in the palette under 'datasphere' (the config node among configuration nodes)", async () => {
    const info = await page.evaluate((types: string[]) => {
      const RED = (window as any).RED;
      return types.map((t) => ({
        type: t,
        category: RED.nodes.getType(t)?.category ?? null,
        inDatasphere: !!document.querySelector(`#red-ui-palette-container-datasphere .red-ui-palette-node[data-palette-type="${t}"]`),
        icon: document.querySelector(`.red-ui-palette-node[data-palette-type="${t}"] .red-ui-palette-icon-container`)?.getAttribute("data-palette-icon") ?? null,
      }));
    }, TYPES);
    for (const i of info) {
      if (isConfigType(i.type)) assert.equal(i.category, "config", `${i.type} is a configuration node`);
      else {
        assert.equal(i.category, "datasphere", `${i.type} category`);
        assert.ok(i.inDatasphere, `${i.type} is in the palette under datasphere`);
        // Node-RED falls back to its default icon when a node's own is not found in the module.
        assert.match(String(i.icon), new RegExp(`^icons/${PACKAGE_NAME}/`), `${i.type} shows its own icon, not ${i.icon}`);
      }
    }
    assert.deepEqual(takeConsoleErrors(), []);
  });

  for (const type of TYPES.filter((t) => !isConfigType(t))) {
    it(`opens and closes the edit dialog of ${type} (dragged from the palette) with no console error`, async () => {
      const before: string[] = await page.evaluate((t: string) => (window as any).RED.nodes.filterNodes({ type: t }).map((n: any) => n.id), type);
      const source = page.locator(`#red-ui-palette-container-datasphere .red-ui-palette-node[data-palette-type="${type}"]`);
      assert.equal(await source.count(), 1, `${type} is in the palette`);
      await source.scrollIntoViewIfNeeded();
      const from = await source.boundingBox();
      const chart = await page.locator("#red-ui-workspace-chart").boundingBox();
      assert.ok(from && chart);
      await page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
      await page.mouse.down();
      await page.mouse.move(chart.x + 300, chart.y + 150 + 60 * nonConfig().indexOf(type), { steps: 12 });
      await page.mouse.up();
      let id = "";
      await waitFor(async () => {
        const now: string[] = await page.evaluate((t: string) => (window as any).RED.nodes.filterNodes({ type: t }).map((n: any) => n.id), type);
        id = now.find((x) => !before.includes(x)) ?? "";
        return id !== "";
      }, `a ${type} node on the canvas`);
      await page.locator(`[id="${id}"] .red-ui-flow-node`).dblclick();
      await page.locator("#node-dialog-ok").waitFor({ state: "visible" });
      await page.locator(`#dialog-form, .red-ui-tray-body form`).first().waitFor({ state: "visible" });
      const inputs = await page.locator(".red-ui-tray-body input, .red-ui-tray-body select").count();
      assert.ok(inputs > 0, "the dialog shows the node's properties");
      await page.click("#node-dialog-cancel");
      await page.locator("#node-dialog-ok").waitFor({ state: "detached" });
      assert.deepEqual(takeConsoleErrors(), []);
    });
  }

  it("shows the config node's token as a password field and never the stored token", async () => {
    await page.evaluate(() => (window as any).RED.editor.editConfig("", "datasphere-config", "seed-cfg"));
    const token = page.locator("#node-config-input-token");
    await token.waitFor({ state: "visible" });
    assert.equal(await token.getAttribute("type"), "password");
    const value = await token.inputValue();
    assert.notEqual(value, STORED_TOKEN);
    assert.ok(value === "" || value === "__PWRD__", `placeholder, not the token: ${JSON.stringify(value)}`);
    assert.ok(!(await page.content()).includes(STORED_TOKEN), "the token is nowhere in the page");
    await page.click("#node-config-dialog-cancel");
    await token.waitFor({ state: "detached" });
    for (const path of ["flows", "credentials/datasphere-config/seed-cfg"]) {
      const body = await (await fetch(new URL(path, nr!.url), { headers: { Accept: "application/json" } })).text();
      assert.ok(!body.includes(STORED_TOKEN), `GET /${path} does not carry the token`);
    }
    assert.deepEqual(takeConsoleErrors(), []);
  });

  for (const type of TYPES) {
    it(`shows the help of ${type} in the help sidebar`, async () => {
      const expected = helpHeadings(type);
      assert.ok(expected.length > 0, `${type} has help with sections`);
      await page.evaluate((t: string) => (window as any).RED.sidebar.help.show(t), type);
      await waitFor(async () => {
        const shown: string[] = await page.evaluate(() =>
          [...document.querySelectorAll(".red-ui-sidebar-help-stack h3, .red-ui-help h3")].map((h: any) => (h.textContent ?? "").trim()),
        );
        return expected.every((h) => shown.includes(h));
      }, `help sections ${expected.join(", ")} of ${type}`);
      assert.deepEqual(takeConsoleErrors(), []);
    });
  }

  for (const example of EXAMPLES) {
    it(`imports examples/${example}.json from Import > Examples and deploys it without errors`, async function () {
      // Start from an empty workspace.
      const reset = await fetch(new URL("flows", nr!.url), {
        method: "POST",
        headers: { "Content-Type": "application/json", "Node-RED-Deployment-Type": "full" },
        body: "[]",
      });
      assert.equal(reset.status, 204);
      await openEditor();
      takeConsoleErrors();

      await importExampleFromMenu(page, example);
      await page.locator("#red-ui-clipboard-dialog").waitFor({ state: "hidden" });
      const expectedIds = (JSON.parse(readFileSync(join(repoRoot, "examples", `${example}.json`), "utf8")) as Array<{ id: string }>).length;
      await waitFor(async () => (await page.evaluate(() => {
        const RED = (window as any).RED;
        let count = 0;
        RED.nodes.eachNode(() => count++);
        RED.nodes.eachConfig(() => count++);
        RED.nodes.eachWorkspace(() => count++);
        return count;
      })) >= expectedIds, `${example} imported`);
      // Imported nodes may hang on the mouse until placed: click an empty spot.
      await page.mouse.click(700, 820);

      const problems: string[] = await page.evaluate(() => {
        const RED = (window as any).RED;
        const out: string[] = [];
        const check = (n: any) => {
          if (n.type === "unknown") out.push(`unknown type ${n.name || n.id}`);
          if (n.valid === false) out.push(`invalid ${n.type} ${n.id}: ${JSON.stringify(n.validationErrors ?? [])}`);
        };
        RED.nodes.eachNode(check);
        RED.nodes.eachConfig((n: any) => { if (n.type !== "global-config") check(n); });
        return out;
      });
      assert.deepEqual(problems, [], "every imported node is known and valid");

      // A config node that takes its token from a credential gets one typed, like a user would
      // (as ${DATASPHERE_TOKEN}); one that reads DATASPHERE_TOKEN from the environment is left as imported.
      const configIds: string[] = await page.evaluate(() => {
        const ids: string[] = [];
        (window as any).RED.nodes.eachConfig((n: any) => { if (n.type === "datasphere-config" && n.tokenSource !== "env") ids.push(n.id); });
        return ids;
      });
      const exampleNodes = JSON.parse(readFileSync(join(repoRoot, "examples", `${example}.json`), "utf8")) as Array<{ type: string }>;
      const needsDatasphere = exampleNodes.some((n) => n.type === "datasphere-config");
      const configCount: number = await page.evaluate(() => {
        let count = 0;
        (window as any).RED.nodes.eachConfig((n: any) => { if (n.type === "datasphere-config") count++; });
        return count;
      });
      assert.ok(configCount > 0 || !needsDatasphere, "the example's datasphere-config node was imported");
      for (const id of configIds) {
        await page.evaluate((cid: string) => (window as any).RED.editor.editConfig("", "datasphere-config", cid), id);
        await page.locator("#node-config-input-token").fill("${DATASPHERE_TOKEN}");
        await page.click("#node-config-dialog-ok");
        await page.locator("#node-config-input-token").waitFor({ state: "detached" });
      }

      // The MQTT example expects a broker on localhost:1883; like a user, point it at the one we run.
      const brokerIds: string[] = await page.evaluate(() => {
        const ids: string[] = [];
        (window as any).RED.nodes.eachConfig((n: any) => { if (n.type === "mqtt-broker") ids.push(n.id); });
        return ids;
      });
      if (brokerIds.length > 0 && !broker) requireMosquitto(this);
      for (const id of brokerIds) {
        await page.evaluate((bid: string) => (window as any).RED.editor.editConfig("", "mqtt-broker", bid), id);
        await page.locator("#node-config-input-broker").fill("127.0.0.1");
        await page.locator("#node-config-input-port").fill(String(broker!.port));
        await page.click("#node-config-dialog-ok");
        await page.locator("#node-config-input-broker").waitFor({ state: "detached" });
      }

      const logMark = nr!.log().length;
      await page.click("#red-ui-header-button-deploy");
      const confirm = page.locator(".ui-dialog:visible", { hasText: /deploy/i });
      const deployed = page.locator(".red-ui-notification", { hasText: /Successfully deployed/i });
      await Promise.race([deployed.first().waitFor({ state: "visible" }), confirm.first().waitFor({ state: "visible" })]);
      if (await confirm.count()) assert.fail(`deploy asked for confirmation: ${await confirm.first().innerText()}`);

      const runtime = (await (await fetch(new URL("flows", nr!.url), { headers: { Accept: "application/json" } })).json()) as Array<{ id: string; type: string }>;
      assert.ok(runtime.some((n) => n.type === "datasphere-config" || n.type === "datasphere-stac-api"), "the runtime has the flow");
      for (const id of configIds) {
        const creds = (await (await fetch(new URL(`credentials/datasphere-config/${id}`, nr!.url))).json()) as { has_token?: boolean };
        assert.equal(creds.has_token, true, `config ${id} was deployed with the token typed into it`);
      }

      // Run it: press every inject button, then give the flow a few seconds against the sandbox.
      // The runtime may still be starting the flow just after the editor says "deployed": the inject
      // route answers 404 until the node exists (a 404 triggers nothing, so asking again is safe).
      for (const n of runtime.filter((n) => n.type === "inject")) {
        await waitFor(async () => (await fetch(new URL(`inject/${n.id}`, nr!.url), { method: "POST" })).status === 200, `inject ${n.id} answers 200`, 10_000, 200);
      }
      const debugIds = new Set(runtime.filter((n) => n.type === "debug").map((n) => n.id));
      // A scale-out worker has no source of its own: its Items come from another Node-RED (scale-out.test.ts runs it).
      const hasSource = runtime.some((n) => n.type === "inject" || n.type === "datasphere-subscribe-in");
      const debugMessages = async (): Promise<number> =>
        page.evaluate((ids: string[]) => {
          const shown = [...document.querySelectorAll(".red-ui-debug-msg")] as any[];
          return shown.filter((el) => ids.some((id) => el.classList.contains(`red-ui-debug-msg-node-${id.replace(/\./g, "_")}`)) || ids.length === 0).length;
        }, [...debugIds]);
      if (debugIds.size > 0 && hasSource) {
        // Against the sandbox, every example puts something in the debug sidebar.
        await page.evaluate(() => (window as any).RED.sidebar.show("debug"));
        await waitFor(async () => (await debugMessages()) > 0, `a debug message from ${example}`, 60_000);
      }
      await page.waitForTimeout(3_000); // let late errors and statuses arrive
      console.log(`      ${example}: ${await debugMessages()} debug message(s) within the run`);

      const logged = nr!.log().slice(logMark).split("\n").filter((l) => /\[(warn|error)\]/.test(l));
      assert.deepEqual(logged, [], "no warning or error logged by the flow");
      const red: string[] = await page.evaluate(() => {
        const RED = (window as any).RED;
        const out: string[] = [];
        RED.nodes.eachNode((n: any) => {
          if (n.status && n.status.fill === "red") out.push(`${n.type} ${n.id}: ${n.status.text}`);
        });
        return out;
      });
      assert.deepEqual(red, [], "no red status");
      // Fan-out: Items went through Mosquitto and came back to every debug node fed by an mqtt in node.
      const consumers = runtime.filter((n) => n.type === "debug" && runtime.some((m) => m.type === "mqtt in" && JSON.stringify((m as { wires?: unknown }).wires ?? []).includes(`"${n.id}"`)));
      if (hasSource && consumers.length > 0) {
        const silent: string[] = await page.evaluate((ids: string[]) =>
          ids.filter((id) => document.querySelectorAll(`.red-ui-debug-msg-node-${id.replace(/\./g, "_")}`).length === 0), consumers.map((n) => n.id));
        assert.deepEqual(silent, [], "every consumer received Items");
      }
      // Every example's editor view goes to test-artifacts/ (git-ignored); the pipeline is the one to look at.
      {
        mkdirSync(ARTIFACTS, { recursive: true });
        const flowTab = runtime.find((n) => n.type.startsWith("datasphere-") && n.type !== "datasphere-config" && (n as { z?: string }).z) as { z?: string } | undefined;
        await page.evaluate((z: string) => {
          const RED = (window as any).RED;
          if (z) RED.workspaces.show(z);
          document.querySelectorAll(".red-ui-notification").forEach((el: any) => (el.style.display = "none"));
        }, flowTab?.z ?? "");
        const search = page.locator("#red-ui-palette-search input");
        await search.fill(""); // the browser restores a typed filter after a reload
        await search.pressSequentially("datasphere");
        await page.waitForTimeout(800);
        await page.screenshot({ path: join(ARTIFACTS, `editor-${example}.png`) });
      }
      assert.deepEqual(takeConsoleErrors(), []);
    });
  }

  it("reached no host but Node-RED's own", () => {
    assert.deepEqual(external, []);
  });
});
