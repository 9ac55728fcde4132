// Driving the hospital console: sign in with the institution's key file, request, redeem.

import { openPage } from "./lib.mjs";

export async function hospitalConsole(browser, institution) {
  const page = await openPage(browser, "/console/hospital");
  await page.getByLabel(/机构编号|Institution id/).fill(institution.id);
  await page.getByLabel(/机构私钥文件|private key file/).setInputFiles(institution.pem);
  await page.locator("#key-form button[type=submit]").click();
  await page.locator("#app").waitFor({ state: "visible" });
  return page;
}

/** Send a request through the form; return the new decision card. */
export async function requestRecords(page, subject, { holder, categories, purpose, emergency = false }) {
  await page.locator('.tab[data-tab="request"]').click();
  const shown = page.locator("[data-testid=decision]");
  const previous = (await shown.count()) ? await shown.getAttribute("data-request-id") : "none";
  const box = page.locator("#emergency");
  if ((await box.isChecked()) !== emergency) await box.setChecked(emergency);
  await page.locator("#subject").fill(subject);
  await page.locator("#holder").selectOption(holder);
  await page.locator("#purpose").selectOption(purpose);
  for (const category of categories) await page.locator(`#request-categories-${category}`).check();
  await page.locator("#request-form button[type=submit]").click();
  const card = page.locator(`[data-testid=decision]:not([data-request-id="${previous}"])`);
  await card.waitFor();
  return card;
}

export async function redeemGrant(page, handover) {
  await page.locator('.tab[data-tab="redeem"]').click();
  await page.getByLabel(/申请机构交来的许可|Grant from the requesting institution/).fill(handover);
  await page.locator("#redeem-form button[type=submit]").click();
  const release = page.locator("[data-testid=release]");
  await release.waitFor();
  return release;
}
