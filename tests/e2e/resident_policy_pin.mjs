// A pinned witness policy that does not parse fails closed (review A item 5): with the policy
// pinned in this browser holding a no-break space where the grammar allows only a space or a
// tab, every entry of the history is marked not verified, saying the policy is malformed;
// none is checked as if there were no policy.

import { check, openPage, PHONE, run, shot, signInWithToken, step, world } from "./lib.mjs";

const [resident, policy] = process.argv.slice(3);

await run(async (browser) => {
  step("the resident's browser has pinned a policy that does not parse");
  const page = await openPage(browser, "/app/", { viewport: PHONE });
  await page.evaluate((text) => localStorage.setItem("consent-ledger.witness-policy", text), policy);
  await page.reload();
  await signInWithToken(page, world.residents[resident].token);
  await page.locator("#app").waitFor({ state: "visible" });
  await page.locator('.tab[data-tab="history"]').click();
  await page.locator("#history-list li.entry").first().waitFor();
  const marks = await page.locator("#history-list li.entry").evaluateAll((els) =>
    els.map((e) => [e.dataset.verified, e.querySelector(".mark").dataset.reason]),
  );
  step(`marks: ${JSON.stringify(marks)}`);
  check(marks.length > 0, "the history has entries");
  check(marks.every(([verified, reason]) => verified === "failed" && reason === "policy-format"), "every entry is not verified, because of the policy");
  const mark = page.locator("#history-list li.entry .mark").first();
  check((await mark.innerText()).includes("见证方策略格式错误"), "and the mark says the policy is malformed");
  check(
    (await page.evaluate(() => localStorage.getItem("consent-ledger.witness-policy"))) === policy,
    "the pin stays: a later load fails closed too",
  );
});
