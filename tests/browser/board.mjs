// Drives Debian's Chromium with playwright-core: open the sandbox board, report that the deal is not
// there yet, wait for the test to make the tool call (a line on stdin), then wait for the deal's card
// to appear and take a screenshot.
import { chromium } from "playwright-core";

const [url, screenshot, dealName, executablePath] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 820 } });
  await page.goto(url);
  await page.locator("#stamp", { hasText: "updated" }).waitFor({ timeout: 15000 });
  const before = await page.locator(".card", { hasText: dealName }).count();
  console.log(`ready ${before}`);
  await new Promise((resolve) => process.stdin.once("data", resolve));
  process.stdin.destroy();  // an open stdin would keep node alive after the browser closes
  const card = page.locator(".card", { hasText: dealName }).first();
  await card.waitFor({ timeout: 15000 });
  const column = await card.locator("xpath=ancestor::div[contains(@class,'col')]/h3").innerText();
  await page.screenshot({ path: screenshot, fullPage: true });
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  console.log(`seen ${column} width ${width}`);
} finally {
  await browser.close();
}
