// Break-glass from the hospital console: an emergency request is permitted and flagged, and
// its justification is filed from the decision. A clinic signs in with a token instead of a key.

import { hospitalConsole, requestRecords } from "./hospital.mjs";
import { allowConsoleErrors, check, openPage, run, shot, step, world } from "./lib.mjs";

const jun = world.residents.jun;

await run(async (browser) => {
  step("East River Hospital opens a break-glass request for trauma records");
  const page = await hospitalConsole(browser, world.institutions["h-east"]);
  const card = await requestRecords(page, jun.subject, {
    holder: "h-west",
    categories: ["emergency-trauma"],
    purpose: "emergency",
    emergency: true,
  });
  check((await card.getAttribute("data-decision")) === "permit", "break-glass is permitted");
  const text = await card.innerText();
  check(text.includes("紧急访问（破窗）") && text.includes("须在此前提交理由"), `flagged with a deadline: ${text}`);
  await card.getByLabel(/紧急访问理由|Justification/).fill("Unconscious trauma patient; prior imaging needed at once.");
  await shot(page, "hospital-breakglass");

  step("it files the justification");
  await card.locator("form.justify button[type=submit]").click();
  const filed = page.locator("[data-testid=justified]");
  await filed.waitFor();
  check(["true", "false"].includes(await filed.getAttribute("data-late")), "the service says whether it was late");

  step("a request without a subject id is refused in words before it is sent");
  await page.locator("#subject").fill("not-a-subject");
  await page.locator("#request-form button[type=submit]").click();
  await page.locator("#alert:not([hidden])").waitFor();
  check((await page.locator("#alert").innerText()).includes("64 位十六进制"), "the form says what is wrong");
  check((await page.locator("#subject").getAttribute("aria-invalid")) === "true", "and marks the field");

  step("the API's problem answer is shown in words: no resident has this subject id");
  await page.locator("#subject").fill("0".repeat(64));
  await page.locator("#request-form button[type=submit]").click();
  await page.locator("#alert:not([hidden])", { hasText: "未找到" }).waitFor();
  check((await page.locator("#subject").getAttribute("aria-invalid")) === null, "the field itself was well formed");
  allowConsoleErrors(/404 \(Not Found\)/);

  step("a clinic signs in with an institution token it signed itself");
  const clinic = await openPage(browser, "/console/hospital");
  await clinic.locator("#signin details summary").click();
  await clinic.getByLabel(/^机构令牌|^Institution token/).fill(process.argv[3]);
  await clinic.locator("#signin-form button[type=submit]").click();
  await clinic.locator("#app").waitFor({ state: "visible" });
  check((await clinic.locator("#who").innerText()).includes("North Gate Clinic"), "signed in as the clinic");
});
