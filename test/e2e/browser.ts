import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

/**
 * Whether the browser tests can run: without /usr/bin/chromium they fail in CI (CI=true), where
 * chromium is part of the machine set-up, and are skipped with a message on a developer's machine.
 */
export function requireChromium(context: Mocha.Context): void {
  if (existsSync(CHROMIUM)) return;
  const message = `${CHROMIUM} is missing: the editor test needs Debian's chromium (apt-get install -y chromium)`;
  if (process.env.CI === "true") throw new Error(`${message}; CI must install it`);
  console.log(`      skipped: ${message}`);
  context.skip();
}

/** Headless Chromium from the system with a fresh profile; nothing is downloaded. */
export async function launchChromium(): Promise<{ context: BrowserContext; profile: string; external: string[] }> {
  const { chromium } = await import("playwright-core");
  const profile = mkdtempSync(join(tmpdir(), "chromium-profile-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1600, height: 900 },
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  // Only loopback is reachable: anything else the editor tries is refused and recorded.
  const external: string[] = [];
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.protocol === "data:" || url.hostname === "127.0.0.1" || url.hostname === "localhost") return route.continue();
    external.push(url.href);
    return route.abort();
  });
  return { context, profile, external };
}
