import type { Page } from "playwright-core";
import { PACKAGE_NAME } from "./support";

/** Menu > Import > Examples > this package > `example` > Import, as a user does it. Returns once Import is clicked. */
export async function importExampleFromMenu(page: Page, example: string): Promise<void> {
  await page.click("#red-ui-header-button-sidemenu");
  await page.click("#menu-item-import");
  await page.click("#red-ui-tab-red-ui-clipboard-dialog-import-tab-examples a");
  const tree = page.locator("#red-ui-clipboard-dialog-import-tab-examples");
  await tree.locator(".red-ui-treeList-label", { hasText: PACKAGE_NAME }).click();
  const item = tree.locator(".red-ui-treeList-label-text", { hasText: new RegExp(`^${example}$`) });
  const importEnabled = page.locator("#red-ui-clipboard-dialog-ok:not(.ui-state-disabled)");
  // Import is enabled once the editor has fetched the example; a click that lands while the tree is
  // still settling on a busy machine selects nothing, so click again, as a user would.
  for (let attempt = 1; ; attempt++) {
    await item.click();
    try {
      await importEnabled.waitFor({ timeout: 10_000 });
      break;
    } catch (error) {
      if (attempt === 3) throw error;
    }
  }
  await importEnabled.click();
}
