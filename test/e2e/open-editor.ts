import type { Page, Request } from "playwright-core";

// Globals of the page, used inside page.evaluate callbacks (the project compiles without the DOM lib).
declare const window: any;
declare const document: any;

/**
 * Opens the Node-RED editor at `url` and waits until it is usable: the given node types are
 * registered, the palette is drawn and a workspace is active. After `firstWaitMs` it says what was
 * missing (types, palette, workspace, page errors, requests that failed or never finished, and the
 * Node-RED log's warnings and errors when `runtimeLog` is given), then reloads once, as a user would,
 * and requires a ready editor. These lines found why editors lacked our types in full runs: a rebuild
 * of the checkout during the suite (fixed in scripts/build.mjs; test/e2e/build.test.ts).
 */
export async function openEditor(page: Page, url: string, types: string[], runtimeLog?: () => string, firstWaitMs = 45_000): Promise<void> {
  const problems: string[] = [];
  const pending = new Set<Request>();
  const onRequest = (request: Request) => pending.add(request);
  const onFinished = (request: Request) => pending.delete(request);
  const onFailed = (request: Request) => {
    pending.delete(request);
    problems.push(`request failed: ${request.method()} ${request.url()} (${request.failure()?.errorText ?? "?"})`);
  };
  const onConsole = (message: { type(): string; text(): string }) => {
    if (message.type() === "error") problems.push(`console.error: ${message.text()}`);
  };
  const onPageError = (error: Error) => problems.push(`page error: ${error.message}`);
  page.on("request", onRequest);
  page.on("requestfinished", onFinished);
  page.on("requestfailed", onFailed);
  page.on("console", onConsole);
  page.on("pageerror", onPageError);
  const ready = (timeout: number) =>
    page.waitForFunction(
      (want: string[]) => {
        const RED = (window as any).RED;
        return !!RED?.nodes?.getType && want.every((t) => RED.nodes.getType(t)) && !!document.querySelector(".red-ui-palette-node") && !!RED.workspaces?.active();
      },
      types,
      { timeout },
    );
  try {
    await page.goto(url, { waitUntil: "load" });
    try {
      await ready(firstWaitMs);
    } catch {
      const missing = await page.evaluate((want: string[]) => {
        const RED = (window as any).RED;
        return { red: !!RED, types: want.filter((t) => !RED?.nodes?.getType?.(t)), palette: !!document.querySelector(".red-ui-palette-node"), workspace: !!RED?.workspaces?.active?.() };
      }, types);
      const unfinished = [...pending].map((r) => `${r.method()} ${r.url()}`);
      const runtime = (runtimeLog?.() ?? "").split("\n").filter((line) => /warn|error|datasphere|missing/i.test(line)).slice(-30);
      console.log(`      the editor was not ready after ${firstWaitMs / 1000} s: ${JSON.stringify({ missing, unfinished, problems: problems.slice(0, 8), runtime })}; reloading once`);
      await page.reload({ waitUntil: "load" });
      await ready(60_000);
    }
  } finally {
    page.off("request", onRequest);
    page.off("requestfinished", onFinished);
    page.off("requestfailed", onFailed);
    page.off("console", onConsole);
    page.off("pageerror", onPageError);
  }
}
