// /docs in chromium: Swagger UI must render this service's operations under the apps' CSP, with
// no CSP violation, no console error, and no request to any other origin (a CDN among them).

import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const { chromium: executablePath, url } = JSON.parse(readFileSync(process.argv[2], "utf8"));
const problems = [];
const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-background-networking"],
});
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(60_000);
  await page.route("**/*", (route) => {
    if (route.request().url().startsWith(`${url}/`)) return route.continue();
    problems.push(`request off the origin: ${route.request().url()}`);
    return route.abort();
  });
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (event) => {
      console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`);
    });
  });
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console error: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  const response = await page.goto(`${url}/docs`);
  if (!response.headers()["content-security-policy"]) problems.push("no CSP on /docs");
  try {
    await page.waitForSelector(".opblock", { timeout: 30_000 });
  } catch (error) {
    problems.push(`no operation rendered: ${error.message.split("\n")[0]}`);
  }
  const operations = await page.locator(".opblock").count();
  if (operations < 20) problems.push(`only ${operations} operations rendered`);
  const title = await page.locator(".info .title").first().innerText({ timeout: 5_000 }).catch(() => "");
  if (!title.includes("consent-ledger")) problems.push(`title ${JSON.stringify(title)}`);
  console.log(`${operations} operations rendered`);
} finally {
  await browser.close();
}
for (const problem of problems) console.log(problem);
console.log(`${problems.length} problems`);
process.exit(problems.length ? 1 : 0);
