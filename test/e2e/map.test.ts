import { strict as assert } from "node:assert";
import { existsSync, mkdirSync, readFileSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { startSandbox, type Sandbox } from "../../src/sandbox";
import { startNodeRed, type NodeRedProcess } from "../helpers/node-red-process";
import { gradientPng } from "../helpers/png";
import { repoRoot } from "../helpers/paths";
import { waitFor } from "../helpers/wait";
import { launchChromium, requireChromium } from "./browser";
import { freshUserDir, linkCheckout, removeDir } from "./support";

// Globals of the worldmap page, used inside page.evaluate callbacks (no DOM lib in this project).
declare const document: any;
declare const map: any;
declare const markers: Record<string, any>;
declare const L: any;

const LIVE = "sentinel-2-l2a-live";
const WORLDMAP = "node-red-contrib-web-worldmap";
const ARTIFACTS = join(repoRoot, "test-artifacts");
const HOSTILE_ID = 'S2-<img src=x onerror="window.pwned=1">-hostile';

describe("e2e: live footprints on node-red-contrib-web-worldmap (examples/map-footprints.json, real browser)", function () {
  this.timeout(240_000);
  let sandbox: Sandbox | undefined;
  let userDir: string | undefined;
  let nr: NodeRedProcess | undefined;
  let context: BrowserContext | undefined;
  let profile: string | undefined;
  let page: Page;

  before(async function () {
    requireChromium(this);
    // Public assets, so the browser can load the thumbnails (it sends no token).
    sandbox = await startSandbox({ port: 0, token: "map-token", seed: 3, rate: 0, requireAssetAuth: false });
    userDir = freshUserDir("map");
    linkCheckout(userDir);
    // The map node as a user installs it into the user directory (found the same way under Node-RED 4 and 5).
    mkdirSync(join(userDir, "node_modules"), { recursive: true });
    symlinkSync(join(repoRoot, "node_modules", WORLDMAP), join(userDir, "node_modules", WORLDMAP), "dir");
    const flows = JSON.parse(readFileSync(join(repoRoot, "examples", "map-footprints.json"), "utf8")) as Array<{ id: string }>;
    nr = await startNodeRed({
      userDir,
      flows,
      credentials: { "datasphere.config.env": { token: sandbox.token } },
      env: { DATASPHERE_API_URL: sandbox.url, DATASPHERE_PUBLISH_URL: sandbox.publishUrl, DATASPHERE_TOKEN: sandbox.token },
    });
    await waitFor(() => sandbox!.liveSubscriberCount(LIVE) >= 1, "the example's subscription", 60_000);
    ({ context, profile } = await launchChromium());
    page = context.pages()[0] ?? (await context.newPage());
  });

  after(async () => {
    await context?.close();
    await nr?.stop();
    await sandbox?.close();
    removeDir(userDir);
    removeDir(profile);
  });

  it("draws each live Item's footprint, with id, datetime, cloud cover and thumbnail in its popup", async () => {
    await page.goto(new URL("worldmap/", nr!.url).href, { waitUntil: "load" });
    await page.waitForFunction(() => typeof map !== "undefined" && !!map && !!document.querySelector(".leaflet-container"), undefined, { timeout: 60_000 });

    // Items arrive after the page is open: live, over the example's subscription.
    // The sandbox's thumbnail bytes are not a picture: the first Item gets a real one (a PNG), so the
    // popup must show it loaded; the others keep theirs.
    const picture = sandbox!.addAsset("map/thumbnail.png", gradientPng(96, [30, 120, 200]), "image/png");
    const items = await Promise.all(Array.from({ length: 8 }, (_, i) => sandbox!.datasetItem("sentinel-2-l2a-sample", i * 37)));
    const withPicture = items[0] as { assets: Record<string, { href: string; type?: string }> };
    withPicture.assets = { ...withPicture.assets, thumbnail: { ...withPicture.assets.thumbnail, href: picture.href, type: "image/png" } };
    for (const item of items) sandbox!.publishLive(LIVE, item);
    const ids = items.map((i) => String(i.id));

    await page.waitForFunction((want: string[]) => want.every((id) => markers[id]), ids, { timeout: 60_000 });
    const paths = await page.evaluate(() => document.querySelectorAll(".leaflet-overlay-pane path").length);
    assert.ok(paths >= ids.length, `${paths} footprint paths drawn for ${ids.length} Items`);

    // Like a user: zoom to the footprints and click one (the popup of whichever footprint is on top),
    // then open the first one's popup as well (its thumbnail is the real picture).
    const at = await page.evaluate((id: string) => {
      map.fitBounds(L.featureGroup(Object.values(markers)).getBounds(), { padding: [30, 30], animate: false });
      const point = map.latLngToContainerPoint(markers[id].getBounds().getCenter());
      const box = map.getContainer().getBoundingClientRect();
      return { x: box.left + point.x, y: box.top + point.y };
    }, ids[0]);
    await page.mouse.click(at.x, at.y);
    await page.locator(".leaflet-popup-content").waitFor({ state: "visible", timeout: 10_000 });
    const shown = await page.evaluate(() => {
      const popup = document.querySelector(".leaflet-popup-content");
      return { text: popup?.textContent ?? "", img: popup?.querySelector("img")?.getAttribute("src") ?? null };
    });
    const index = ids.findIndex((id) => shown.text.includes(id));
    assert.ok(index >= 0, `the popup names one of the Items: ${shown.text}`);
    const first = items[index] as { properties: { datetime: string; "eo:cloud_cover": number }; assets: { thumbnail: { href: string } } };
    assert.ok(shown.text.includes(first.properties.datetime), "the popup shows the datetime");
    assert.ok(shown.text.includes(`${first.properties["eo:cloud_cover"].toFixed(1)} %`), `the popup shows the cloud cover: ${shown.text}`);
    assert.equal(shown.img, first.assets.thumbnail.href, "the popup shows the thumbnail");
    await page.evaluate((id: string) => {
      map.closePopup();
      markers[id].eachLayer((layer: any) => {
        try {
          layer.openPopup();
        } catch {
          // worldmap 5.8.1's popupopen handler throws for GeoJSON shapes (after the popup opened)
        }
      });
    }, ids[0]);
    await page.waitForFunction(
      (href: string) => [...document.querySelectorAll(".leaflet-popup-content img")].some((img: any) => img.getAttribute("src") === href && img.complete && img.naturalWidth === 96),
      picture.href,
      { timeout: 20_000 },
    );

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "map-footprints.png") });
  });

  it("shows an Item id holding HTML as text in the popup, never as markup", async () => {
    const item = { ...(await sandbox!.datasetItem("sentinel-2-l2a-sample", 400)), id: HOSTILE_ID };
    sandbox!.publishLive(LIVE, item);
    await page.waitForFunction((id: string) => !!markers[id], HOSTILE_ID, { timeout: 60_000 });
    const popup = await page.evaluate((id: string) => {
      map.closePopup();
      markers[id].eachLayer((layer: any) => {
        try {
          layer.openPopup();
        } catch {
          // worldmap 5.8.1's popupopen handler throws for GeoJSON shapes (after the popup opened)
        }
      });
      const all = [...document.querySelectorAll(".leaflet-popup-content")] as any[];
      const content = all.find((c) => (c.textContent ?? "").includes("hostile"));
      return { text: all.map((c) => c.textContent).join(" | "), images: content?.querySelectorAll("img[src='x']").length ?? -1, pwned: (globalThis as any).pwned === 1 };
    }, HOSTILE_ID);
    assert.ok(popup.text.includes(HOSTILE_ID), `the id is shown as text: ${popup.text}`);
    assert.equal(popup.images, 0, "no element made from the id");
    assert.equal(popup.pwned, false);
    assert.ok(!/\[error\]/.test(nr!.log()), `no error logged:\n${nr!.log()}`);
    assert.ok(existsSync(join(ARTIFACTS, "map-footprints.png")));
  });
});
