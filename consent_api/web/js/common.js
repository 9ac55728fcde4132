// What every page shares: the language switch, alerts that say what the API answered, tabs,
// and the service's public settings read from the page's <meta> tags.

import { ApiProblem } from "./api.js";
import { $, h } from "./dom.js";
import { installSwitch, t, term, translatePage } from "./i18n.js";

export function meta(name) {
  const el = document.querySelector(`meta[name="consent-ledger-${name}"]`);
  return el ? el.getAttribute("content") : "";
}

export function startPage() {
  translatePage();
  installSwitch($("#lang"));
}

/** The sign-in form for a token of `role` and the sign-out button; `enter` runs once in. */
export function installSignIn(session, role, enter) {
  $("#signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const problem = session.signIn($("#token").value, role);
    if (problem) {
      showAlert(t(problem));
      $("#token").setAttribute("aria-invalid", "true");
      $("#token").focus();
      return;
    }
    $("#token").removeAttribute("aria-invalid");
    $("#token").value = "";
    await enter();
  });
  $("#sign-out").addEventListener("click", () => {
    session.signOut();
    location.reload();
  });
}

/** A problem response in words: what kind of failure (by status), then the API's detail. */
export function problemText(error) {
  if (!(error instanceof ApiProblem)) {
    return t("error.unexpected", { detail: error instanceof Error ? error.message : String(error) });
  }
  if (error.status === 0) return t("error.network");
  const known = [400, 401, 403, 404, 409, 410, 413, 422, 429];
  const head = known.includes(error.status)
    ? t(`error.status.${error.status}`)
    : t("error.status.other", { status: error.status });
  const parts = [head];
  const problem = error.problem || {};
  if (problem.detail && problem.detail !== "see errors") parts.push(problem.detail);
  for (const item of problem.errors || []) {
    const where = (item.loc || []).filter((p) => p !== "body").join(".");
    parts.push(where ? `${where}: ${item.msg}` : item.msg);
  }
  return parts.join(" — ");
}

export function showAlert(message) {
  const box = $("#alert");
  box.textContent = message;
  box.hidden = !message;
  if (message) box.scrollIntoView({ block: "nearest" });
}

export function showNotice(message) {
  const box = $("#notice");
  box.textContent = message;
  box.hidden = !message;
}

export function clearMessages() {
  showAlert("");
  showNotice("");
}

/** Run an action, showing its failure as an alert; returns undefined on failure. */
export async function attempt(action) {
  clearMessages();
  try {
    return await action();
  } catch (error) {
    showAlert(problemText(error));
    return undefined;
  }
}

/** Tabs: buttons with data-tab naming a panel; arrow keys move between them. */
export function installTabs(onShow) {
  const tabs = [...document.querySelectorAll(".tab")];
  const show = (name) => {
    for (const tab of tabs) {
      const active = tab.dataset.tab === name;
      tab.setAttribute("aria-current", active ? "page" : "false");
      document.getElementById(tab.dataset.tab).hidden = !active;
    }
    onShow?.(name);
  };
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => show(tab.dataset.tab));
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      const next = tabs[(i + step + tabs.length) % tabs.length];
      next.focus();
      show(next.dataset.tab);
    });
  });
  show(tabs[0].dataset.tab);
  return show;
}

/** Checkboxes for a vocabulary, labelled in words, with stable ids for labels and tests. */
export function checkboxes(container, kind, codes, name, selected = []) {
  container.replaceChildren(
    ...codes.map((code) => {
      const id = `${container.id}-${code}`;
      return h(
        "div",
        { class: "choice" },
        h("input", { type: "checkbox", id, name, value: code, checked: selected.includes(code) }),
        h("label", { for: id, "data-term": `${kind}.${code}` }, term(kind, code)),
      );
    }),
  );
}

export function short(id) {
  return id && id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-4)}` : id;
}

export const CATEGORIES = [
  "lab-results",
  "imaging",
  "prescriptions",
  "discharge-summaries",
  "emergency-chest-pain",
  "emergency-stroke",
  "emergency-trauma",
  "emergency-neonatal",
  "emergency-maternal",
];
export const EMERGENCY_CATEGORIES = CATEGORIES.filter((c) => c.startsWith("emergency-"));
export const PURPOSES = [
  "treatment",
  "referral",
  "remote-consultation",
  "family-doctor",
  "research",
  "emergency",
];
export const INSTITUTION_TYPES = ["hospital", "clinic", "family-doctor-team"];
