// The regulator console: the auditor's findings, charts, the break-glass left unjustified
// shown as overdue, anchored checkpoints linked to their transactions, and search.

import { check, eventually, openPage, run, shot, signInWithToken, step, world } from "./lib.mjs";

const overdueRequest = process.argv[3];
const jun = world.residents.jun;

await run(async (browser) => {
  step("a resident's token does not open the regulator console");
  const wrong = await openPage(browser, "/console/regulator");
  await signInWithToken(wrong, jun.token);
  await wrong.locator("#alert:not([hidden])").waitFor();
  check((await wrong.locator("#alert").innerText()).includes("不是监管机构令牌"), "the wrong role is named");
  check(await wrong.locator("#app").isHidden(), "nothing of the console is shown");

  step("the regulator signs in and sees the auditor's findings and the charts");
  const page = await openPage(browser, "/console/regulator");
  await signInWithToken(page, world.regulator);
  const report = page.locator("[data-testid=report]");
  await report.waitFor();
  check((await report.getAttribute("data-findings")) === "1", "the report's one finding");
  check((await report.locator('li[data-code="anchor-lag"]').innerText()).includes("上链延迟过长"), "named in words");
  for (const chart of ["by-institution", "by-purpose", "denials", "breakglass", "overdue", "anchoring-lag"]) {
    await page.locator(`figure[data-chart="${chart}"]`).waitFor();
  }
  check((await page.locator('figure[data-chart="by-institution"] rect[data-series="permit"]').count()) > 0, "accesses per institution are drawn");
  check((await page.locator('figure[data-chart="denials"] rect[data-series="deny"]').count()) > 0, "denials are drawn");
  await shot(page, "regulator-overview");

  step("the unjustified break-glass shows as overdue");
  await page.locator('.tab[data-tab="breakglass"]').click();
  const row = page.locator(`#breakglass-table tr[data-request-id="${overdueRequest}"]`);
  await eventually(
    page,
    async () => {
      await page.locator("#overdue-only").setChecked(!(await page.locator("#overdue-only").isChecked()));
      await page.locator("#breakglass-table table, #breakglass-table p").first().waitFor();
      return (await page.locator("#overdue-only").isChecked()) && (await row.count()) === 1 && (await row.getAttribute("data-status")) === "overdue";
    },
    "the break-glass is listed as overdue",
  );
  check((await row.innerText()).includes("逾期未说明"), "said in words");
  await page.locator("#overdue-only").setChecked(false);
  await page.locator('#breakglass-table[data-filter="all"]').waitFor({ state: "attached" });
  await row.waitFor();
  check((await row.getAttribute("data-status")) === "overdue", "still overdue among all cases");
  await shot(page, "regulator-breakglass");

  step("anchored checkpoints link to their chain transactions");
  await page.locator('.tab[data-tab="anchors"]').click();
  const link = page.locator("#anchors-table tbody tr a").first();
  await link.waitFor();
  const href = await link.getAttribute("href");
  check(href.startsWith(world.explorer.replace("{tx}", "0x")) && href.length > 60, `an explorer link: ${href}`);
  await shot(page, "regulator-anchors");

  step("search by pseudonymous subject, then by institution");
  await page.locator('.tab[data-tab="search"]').click();
  await page.getByLabel(/居民匿名编号|subject id/).fill(jun.subject);
  await page.locator("#search-form button[type=submit]").click();
  const count = page.locator("[data-testid=search-count]");
  await count.waitFor();
  check(Number(await count.getAttribute("data-count")) >= 1, "the resident's requests are found");
  check((await page.locator(`#search-results tr[data-request-id="${overdueRequest}"]`).count()) === 1, "including the break-glass");
  await shot(page, "regulator-search");
  await page.getByLabel(/居民匿名编号|subject id/).fill("");
  await page.locator("#search-institution").selectOption("c-north");
  await page.locator("#search-form button[type=submit]").click();
  await page.locator('[data-testid=search-count][data-count="0"]').waitFor();
});
