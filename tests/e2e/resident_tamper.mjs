// A tampered history shows as not verified: the history response is intercepted in the
// browser, and one byte of one proof hash flipped, another entry's shown requester changed, a
// release relabelled as a refused redemption, and another resident's logged decision (with its
// genuine receipt) slipped in. The resident app also refuses a token of another role, showing
// nothing.

import { check, openPage, PHONE, run, shot, signInWithToken, step, world } from "./lib.mjs";

const tao = world.residents.tao;
const ana = world.residents.ana;

function flipByte(b64) {
  const bytes = Buffer.from(b64, "base64");
  bytes[0] ^= 0x01;
  return bytes.toString("base64");
}

await run(async (browser) => {
  step("a regulator's token does not open the residents' app");
  const wrong = await openPage(browser, "/app/", { viewport: PHONE });
  await signInWithToken(wrong, world.regulator);
  await wrong.locator("#alert:not([hidden])").waitFor();
  check((await wrong.locator("#alert").innerText()).includes("不是居民令牌"), "the wrong role is named");
  check(await wrong.locator("#app").isHidden(), "nothing of the app is shown");

  step("the history is served with a proof hash flipped, a requester changed, a release relabelled, another's entry added");
  const page = await openPage(browser, "/app/", { viewport: PHONE });
  // Pages of one entry, so the app must follow the service's Link rel="next" to show them all.
  const tampered = {};
  let pages = 0;
  await page.route("**/v1/me/access-history*", async (route) => {
    const url = new URL(route.request().url());
    if (!url.searchParams.has("limit")) url.searchParams.set("limit", "1");
    const response = await route.fetch({ url: url.toString() });
    const entries = await response.json();
    pages += 1;
    if (tampered.other === undefined) {
      // Ana's own history, read with her token: a genuine entry with a genuine receipt.
      const theirs = await route.fetch({
        url: new URL("/v1/me/access-history", url).toString(),
        headers: { ...route.request().headers(), authorization: `Bearer ${ana.token}` },
      });
      const other = (await theirs.json()).find((e) => e.receipt);
      check(other, "the other resident has an anchored entry");
      entries.push(other);
      tampered.other = other.leaf_index;
    }
    for (const entry of entries.filter((e) => e.receipt && e.leaf_index !== tampered.other)) {
      if (tampered.relabelled === undefined && entry.kind === "access.released") {
        entry.decision = "refused";
        entry.refusal = "consent-no-longer-covers";
        tampered.relabelled = entry.leaf_index;
      } else if (tampered.proof === undefined && entry.receipt.proof.length > 0) {
        entry.receipt.proof[0] = flipByte(entry.receipt.proof[0]);
        tampered.proof = entry.leaf_index;
      } else if (tampered.shown === undefined && entry.leaf_index !== tampered.proof) {
        entry.requester = "h-west";
        tampered.shown = entry.leaf_index;
      }
    }
    await route.fulfill({ response, json: entries });
  });
  step("signed in and moved to the history with the keyboard only");
  await page.getByLabel(/平台令牌|Platform token/).fill(tao.token);
  await page.keyboard.press("Tab");
  check(await page.locator("#signin-form button[type=submit]").evaluate((el) => el === document.activeElement), "Tab reaches the sign-in button");
  await page.keyboard.press("Enter");
  await page.locator("#app").waitFor({ state: "visible" });
  await page.locator('.tab[data-tab="consents"]').focus();
  await page.keyboard.press("ArrowRight");
  await page.keyboard.press("ArrowRight");
  check(await page.locator("#history").isVisible(), "arrow keys move between the sections");
  await page.locator("#history-list li.entry").first().waitFor();
  const marks = await page.locator("#history-list li.entry").evaluateAll((els) =>
    Object.fromEntries(els.map((e) => [e.dataset.leafIndex, e.dataset.verified])),
  );
  step(`marks by leaf: ${JSON.stringify(marks)}; tampered: ${JSON.stringify(tampered)}; ${pages} pages`);
  check(Object.keys(marks).length === 5 && pages >= 4, "every page of the history was followed");
  check(marks[tampered.proof] === "failed", "the entry with a flipped proof byte is not verified");
  const failed = page.locator(`#history-list li[data-leaf-index="${tampered.proof}"] .mark`);
  check((await failed.innerText()).includes("未通过验证"), "it says not verified");
  check((await failed.getAttribute("data-reason")) === "root-mismatch", "because the proof leads to another root");
  check((await failed.innerText()).includes("根哈希"), "and says so in words");
  if (tampered.shown !== undefined) {
    check(marks[tampered.shown] === "failed", "an entry showing another requester is not verified");
    const shown = page.locator(`#history-list li[data-leaf-index="${tampered.shown}"] .mark`);
    check((await shown.getAttribute("data-reason")) === "entry-mismatch", "because it is not what was logged");
  }
  check(marks[tampered.relabelled] === "failed", "a release shown as a refused redemption is not verified");
  const relabelled = page.locator(`#history-list li[data-leaf-index="${tampered.relabelled}"] .mark`);
  check((await relabelled.getAttribute("data-reason")) === "entry-mismatch", "because the log holds a release");
  check(marks[tampered.other] === "failed", "another resident's logged entry is not verified in mine");
  const other = page.locator(`#history-list li[data-leaf-index="${tampered.other}"] .mark`);
  check((await other.getAttribute("data-reason")) === "subject-mismatch", "because it is about another resident");
  check((await other.innerText()).includes("另一位居民"), "and says so in words");
  const verified = page.locator('#history-list li.entry[data-verified="verified"] .mark-detail').first();
  check(!(await verified.innerText()).includes("区块"), "a verified mark shows no block number it did not check");
  const touched = [tampered.proof, tampered.shown, tampered.relabelled, tampered.other].map(String);
  const untouched = Object.entries(marks).filter(([leaf]) => !touched.includes(leaf));
  check(untouched.length > 0 && untouched.every(([, mark]) => mark === "verified"), "the untouched entries still verify");
  await shot(page, "resident-history-tampered");
});
