// Drives Debian's Chromium with playwright-core through the OAuth consent page as a person would:
// open the authorize URL (the server sends the browser on to its page), type the connector code,
// press Connect, and print where the browser is sent back to (the client's callback, answered here).
import { chromium } from "playwright-core";

const [authorizeUrl, code, callback, executablePath] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage();
  await page.route(`${callback}**`, (route) => route.fulfill({ status: 200, body: "back in the app" }));
  await page.goto(authorizeUrl);
  const title = await page.locator("h1").innerText();
  await page.fill("#code", code);
  // Said on stderr, for the test's message when something goes wrong.
  page.on("response", (r) => console.error(`response ${r.status()} ${r.url().split("?")[0]}`));
  const [back] = await Promise.all([
    page.waitForRequest((request) => request.url().startsWith(callback), { timeout: 15000 }),
    page.click("button[type=submit]"),
  ]);
  console.log(`title ${title}`);
  console.log(`back ${back.url()}`);
} finally {
  await browser.close();
}
