import type { Page } from "playwright-core";
import { PACKAGE_NAME } from "./support";

/** Menu > Import > Examples > this package > `example` > Import, as a user does it. Returns once Import is clicked. */
export async function importExampleFromMenu(page: Page, example: string): Promise<void> {
  await page.click("#red-ui-header-button-sidemenu");
  await page.click("#menu-item-import");
  await page.click("#red-ui-tab-red-ui-clipboard-dialog-import-tab-examples a");
  const tree = page.locator("#red-ui-clipboard-dialog-import-tab-examples");
  await tree.locator(".red-ui-treeList-label", { hasText: PACKAGE_NAME }).click();
  await tree.locator(".red-ui-treeList-label-text", { hasText: new RegExp(`^${example}$`) }).click();
  await page.click("#red-ui-clipboard-dialog-ok");
}
