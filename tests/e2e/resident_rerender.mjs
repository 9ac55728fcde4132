// A consent list that reloads while the resident has a narrowing form open keeps the form as
// it is: the reload's answer is held in the browser until she has unticked a box and typed a
// date, then let through; the same card, open, with her input, must still be there, and
// submitting it narrows as she asked. (Under load the reload a tab click starts came back
// after the form was opened, and closed it under the user's hand.)

import { check, openPage, PHONE, run, signInWithToken, step, world } from "./lib.mjs";

const ren = world.residents.ren;

await run(async (browser) => {
  const page = await openPage(browser, "/app/", { viewport: PHONE });
  await signInWithToken(page, ren.token);
  const card = page.locator('#consent-list [data-status="active"]').first();
  await card.waitFor();

  step("the consents tab reloads the list; its answer is held back");
  let release;
  const released = new Promise((resolve) => {
    release = resolve;
  });
  let held = 0;
  let heldOne;
  const holding = new Promise((resolve) => {
    heldOne = resolve;
  });
  await page.route("**/v1/consents*", async (route) => {
    if (route.request().method() !== "GET") return route.continue();
    held += 1;
    heldOne();
    await released;
    return route.continue();
  });
  await page.locator('.tab[data-tab="consents"]').click();
  await holding;

  step("meanwhile she opens the narrowing form, unticks imaging and types an end date");
  await card.locator('[data-action="narrow"]').click();
  const form = card.locator("form.narrow");
  await form.locator('input[name="categories"][value="imaging"]').uncheck();
  await form.locator('input[name="end"]').fill("2027-06-30");
  // Resolves on the next change of the list (its children or its busy mark), whatever it is.
  await page.evaluate(() => {
    window.listChanged = new Promise((resolve) => {
      const list = document.querySelector("#consent-list");
      new MutationObserver((_, observer) => {
        observer.disconnect();
        resolve();
      }).observe(list, { childList: true, attributes: true });
    });
  });

  step("the held answer arrives");
  release();
  await page.evaluate(() => window.listChanged);
  await page.locator("#consent-list:not([aria-busy])").waitFor({ state: "attached" });
  check(held === 1, `one reload was held (${held})`);
  check(await form.isVisible(), "the form she opened is still open");
  const imaging = form.locator('input[name="categories"][value="imaging"]');
  check(!(await imaging.isChecked()), "the box she unticked is still unticked");
  check((await form.locator('input[name="end"]').inputValue()) === "2027-06-30", "the date she typed is kept");
  await page.unroute("**/v1/consents*");

  step("she submits it: the consent is narrowed as she asked");
  await form.locator("button[type=submit]").click();
  await page.locator("#notice:not([hidden])").waitFor();
  const narrowed = await page.locator('#consent-list [data-status="active"]').first().innerText();
  check(narrowed.includes("化验结果") && !narrowed.includes("影像检查") && narrowed.includes("2027"), `narrowed: ${narrowed}`);
});
