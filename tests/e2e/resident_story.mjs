// The main story: a resident grants (and, as guardian, grants for her child); a hospital
// requests and is permitted; the holder redeems; the resident narrows, then revokes; the next
// request is denied; the resident sees both decisions with marks her browser verified.

import { hospitalConsole, redeemGrant, requestRecords } from "./hospital.mjs";
import { check, eventually, openPage, PHONE, run, shot, signInWithToken, step, world } from "./lib.mjs";

const mei = world.residents.mei;
const lin = world.residents.lin;
const east = world.institutions["h-east"];
const west = world.institutions["h-west"];

async function grantConsent(page, { grantee, categories, purposes, end }) {
  await page.locator('.tab[data-tab="grant"]').click();
  await page.getByLabel(/谁可以查看|Who may see them/).selectOption(grantee);
  for (const category of categories) await page.locator(`#grant-categories-${category}`).check();
  for (const purpose of purposes) await page.locator(`#grant-purposes-${purpose}`).check();
  if (end) await page.locator("#grant-end").fill(end);
}

await run(async (browser) => {
  step("resident signs in on a phone-sized page");
  const resident = await openPage(browser, "/app/", { viewport: PHONE });
  await shot(resident, "resident-sign-in");
  await signInWithToken(resident, mei.token);
  await resident.locator("#app").waitFor({ state: "visible" });

  step("resident grants East River Hospital lab results and imaging for treatment");
  await grantConsent(resident, {
    grantee: `institution:${east.id}`,
    categories: ["lab-results", "imaging"],
    purposes: ["treatment"],
    end: "2027-12-31",
  });
  await shot(resident, "resident-grant");
  await resident.locator("#grant-form button[type=submit]").click();
  const active = resident.locator('#consent-list [data-status="active"]');
  await active.first().waitFor();
  check((await active.count()) === 1, "one active consent");
  const card = await active.first().innerText();
  check(card.includes("East River Hospital") && card.includes("化验结果") && card.includes("影像检查"), `the consent in plain words: ${card}`);
  check(card.includes("治疗") && card.includes("2027"), `purpose and end shown: ${card}`);
  await shot(resident, "resident-consents");

  step("as guardian, she grants for her child");
  await resident.locator("#add-child summary").click();
  await resident.getByLabel(/孩子的匿名编号|Child's subject id/).fill(lin.subject);
  await resident.locator("#child-form button[type=submit]").click();
  await resident.locator("#notice:not([hidden])").waitFor();
  check((await resident.locator("#acting").inputValue()) === lin.subject, "acting for the child");
  await grantConsent(resident, { grantee: "type:family-doctor-team", categories: ["prescriptions"], purposes: ["family-doctor"] });
  await resident.locator("#grant-form button[type=submit]").click();
  const childCard = resident.locator('#consent-list [data-status="active"]');
  await childCard.first().waitFor();
  const childText = await childCard.first().innerText();
  check(childText.includes("监护人") && childText.includes("家庭医生团队"), `the child's consent, by a guardian: ${childText}`);
  await resident.locator("#acting").selectOption(mei.subject);
  await resident.locator("#consent-list h3", { hasText: "East River Hospital" }).waitFor();
  check((await resident.locator('#consent-list [data-status="active"]').count()) === 1, "back to her own consents");

  step("East River Hospital requests her lab results held by West Lake Hospital: permitted");
  const hospital = await hospitalConsole(browser, east);
  const permit = await requestRecords(hospital, mei.subject, { holder: west.id, categories: ["lab-results"], purpose: "treatment" });
  check((await permit.getAttribute("data-decision")) === "permit", "the first request is permitted");
  const handover = await hospital.locator("#handover-out").inputValue();
  check(JSON.parse(handover).grant_token.length > 20, "the grant is shown for the holder");
  await shot(hospital, "hospital-request");

  step("West Lake Hospital redeems the grant as the holder");
  const holder = await hospitalConsole(browser, west);
  const release = await redeemGrant(holder, handover);
  check((await release.innerText()).includes("East River Hospital"), "the release names the requester");
  await shot(holder, "hospital-redeem");

  step("resident narrows the consent to lab results, then revokes it");
  await resident.locator('.tab[data-tab="consents"]').click();
  const mine = resident.locator('#consent-list [data-status="active"]').first();
  await mine.locator('[data-action="narrow"]').click();
  await mine.locator('input[name="categories"][value="imaging"]').uncheck();
  await mine.locator("form.narrow button[type=submit]").click();
  await resident.locator("#notice:not([hidden])").waitFor();
  const narrowed = await resident.locator('#consent-list [data-status="active"]').first().innerText();
  check(narrowed.includes("化验结果") && !narrowed.includes("影像检查"), `narrowed to lab results: ${narrowed}`);
  await resident.locator('#consent-list [data-status="active"] [data-action="revoke"]').first().click();
  await resident.locator('#revoked-list [data-status="revoked"]').first().waitFor({ state: "attached" });
  check((await resident.locator('#consent-list [data-status="active"]').count()) === 0, "no active consent left");

  step("the next request is denied");
  const deny = await requestRecords(hospital, mei.subject, { holder: west.id, categories: ["lab-results"], purpose: "treatment" });
  check((await deny.getAttribute("data-decision")) === "deny", "the request after revocation is denied");
  check((await deny.innerText()).includes("授权已撤回"), "the denial says the consent was revoked");
  await hospital.locator('.tab[data-tab="mine"]').click();
  await hospital.locator("#mine-table tbody tr").nth(1).waitFor();
  await shot(hospital, "hospital-requests");

  step("resident sees the permit and the denial, each verified in her browser");
  await resident.locator('.tab[data-tab="history"]').click();
  await eventually(
    resident,
    async () => {
      const shown = await resident.locator("#history-list").getAttribute("data-loaded");
      await resident.locator("#history-refresh").click();
      // The reload has landed (not merely the list from before it).
      await resident.waitForFunction((before) => document.querySelector("#history-list").dataset.loaded !== before, shown);
      const marks = await resident.locator("#history-list li.entry").evaluateAll((els) => els.map((e) => e.dataset.verified));
      return marks.length >= 3 && marks.every((m) => m === "verified");
    },
    "every history entry verified once anchored",
  );
  const permitted = resident.locator('#history-list li[data-kind="access.decided"][data-decision="permit"]');
  const denied = resident.locator('#history-list li[data-kind="access.decided"][data-decision="deny"]');
  check((await permitted.count()) === 1 && (await denied.count()) === 1, "one permit and one denial");
  for (const entry of [permitted, denied]) {
    const text = await entry.innerText();
    check(text.includes("East River Hospital") && text.includes("治疗") && text.includes("已验证"), `entry shows who, why and the mark: ${text}`);
  }
  check((await permitted.innerText()).includes("c-"), "the consent relied on is shown");
  await shot(resident, "resident-history");
  await resident.locator("#lang").click();
  await resident.locator("#history-list .mark.verified", { hasText: "Verified" }).first().waitFor();
  check((await denied.innerText()).includes("Access denied"), "the English page says what happened");
  await shot(resident, "resident-history-en");
});
