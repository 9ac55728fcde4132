// Shared by the browser scripts: Debian's chromium through playwright-core (never a downloaded
// browser), the world the Python side set up, checks that fail loudly, and screenshots.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const world = JSON.parse(readFileSync(process.argv[2], "utf8"));
export const PHONE = { width: 390, height: 844 };
export const DESKTOP = { width: 1280, height: 900 };
const problems = [];
let failures = 0;

export function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

export function step(text) {
  console.log(`- ${text}`);
}

export async function launch() {
  return chromium.launch({
    executablePath: world.chromium,
    headless: true,
    args: ["--no-sandbox", "--disable-background-networking"],
  });
}

/** A page in a fresh context (its own sessionStorage); console errors and CSP reports fail. */
export async function openPage(browser, path, { viewport = DESKTOP, lang = "zh" } = {}) {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1, locale: "zh-CN" });
  if (lang !== "zh") {
    await context.addInitScript((value) => localStorage.setItem("consent-ledger.lang", value), lang);
  }
  // Generous: two cores are shared with other test runs, and the anchorer works meanwhile.
  context.setDefaultTimeout(60_000);
  const page = await context.newPage();
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console error on ${path}: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`page error on ${path}: ${error.message}`));
  await page.goto(world.url + path);
  return page;
}

/** Console errors expected by a script (a 4xx the page reports on purpose) are dropped here. */
export function allowConsoleErrors(pattern) {
  for (let i = problems.length - 1; i >= 0; i -= 1) if (pattern.test(problems[i])) problems.splice(i, 1);
}

export async function shot(page, name) {
  await page.screenshot({ path: join(world.screenshots, `${name}.png`), fullPage: true });
  step(`screenshot ${name}.png`);
}

export async function signInWithToken(page, token) {
  await page.getByLabel(/平台令牌|Platform token/).fill(token);
  await page.locator("#signin-form button[type=submit]").click();
}

/** Reload `page` until `probe()` is true (the anchorer works in the background). */
export async function eventually(page, probe, what, tries = 60) {
  for (let i = 0; i < tries; i += 1) {
    if (await probe()) return;
    await page.waitForTimeout(1000);
  }
  throw new Error(`check failed: ${what}`);
}

export async function run(main) {
  const browser = await launch();
  try {
    await main(browser);
    check(problems.length === 0, `no console or page errors:\n${problems.join("\n")}`);
    console.log("ok");
  } catch (error) {
    console.error(error.stack || String(error));
    for (const context of browser.contexts()) {
      for (const page of context.pages()) {
        const alert = await page.locator("#alert").innerText().catch(() => "");
        const file = join(process.env.E2E_FAILURE_DIR || "/tmp", `e2e-failure-${failures++}.png`);
        await page.screenshot({ path: file, fullPage: true }).catch(() => null);
        console.error(`failure screenshot: ${file} (${page.url()})`);
        if (alert) console.error(`alert on ${page.url()}: ${alert}`);
      }
    }
    console.error(problems.join("\n"));
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}
