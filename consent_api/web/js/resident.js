// The resident's app: consents in plain words, granting, narrowing, revoking, acting for a
// child, and "who viewed my records" with a verified mark computed in this browser.

import {
  attempt,
  CATEGORIES,
  checkboxes,
  INSTITUTION_TYPES,
  installSignIn,
  installTabs,
  PURPOSES,
  showAlert,
  showNotice,
  short,
  startPage,
} from "./common.js";
import { $, checked, clear, h } from "./dom.js";
import { formatTime, list, onLangChange, t, term } from "./i18n.js";
import {
  api,
  field,
  granteeWords,
  institutionName,
  periodWords,
  session,
  state,
  subjectQuery,
  words,
} from "./resident-common.js";
import { loadHistory } from "./resident-history.js";

function childrenKey() {
  return `consent-ledger.children.${session.claims()?.sub}`;
}

function children() {
  try {
    return JSON.parse(localStorage.getItem(childrenKey()) || "[]");
  } catch {
    return [];
  }
}

// -- consents ------------------------------------------------------------------------------

function consentCard(item) {
  const consent = item.consent;
  const active = consent.status === "active";
  const card = h(
    "article",
    { class: "card consent", "data-consent-id": consent.consent_id, "data-status": consent.status },
    h("h3", { text: granteeWords(consent.grantee) }),
    h(
      "dl",
      {},
      field(t("resident.consent.what"), words("category", consent.categories, "resident.any.categories")),
      field(t("resident.consent.why"), words("purpose", consent.purposes, "resident.any.purposes")),
      field(t("resident.consent.until"), periodWords(consent.period)),
      consent.holders.length ? field(t("resident.consent.holders"), list(consent.holders.map(institutionName))) : null,
      consent.grantor.kind === "guardian" ? field(t("resident.consent.grantor"), t("resident.consent.by-guardian")) : null,
      !active ? field(t("resident.consent.revoked-at"), formatTime(consent.revoked_at)) : null,
    ),
  );
  if (!active) return card;
  const narrowForm = narrowFormFor(consent);
  const narrowButton = h("button", {
    type: "button",
    class: "secondary",
    "data-action": "narrow",
    "aria-expanded": "false",
    text: t("resident.consent.narrow"),
    onclick: () => {
      narrowForm.hidden = !narrowForm.hidden;
      narrowButton.setAttribute("aria-expanded", String(!narrowForm.hidden));
      if (!narrowForm.hidden) narrowForm.querySelector("input")?.focus();
    },
  });
  const revokeButton = h("button", {
    type: "button",
    class: "danger",
    "data-action": "revoke",
    text: t("resident.consent.revoke"),
    onclick: () => revoke(consent),
  });
  card.append(h("div", { class: "actions" }, narrowButton, revokeButton), narrowForm);
  return card;
}

function narrowFormFor(consent) {
  const id = consent.consent_id.replace(/[^A-Za-z0-9_-]/g, "");
  const categories = consent.categories.length ? consent.categories : CATEGORIES;
  const purposes = consent.purposes.length ? consent.purposes : PURPOSES;
  const cats = h("div", { class: "choices", id: `narrow-cat-${id}` });
  const purps = h("div", { class: "choices", id: `narrow-purpose-${id}` });
  checkboxes(cats, "category", categories, "categories", categories);
  checkboxes(purps, "purpose", purposes, "purposes", purposes);
  const endId = `narrow-end-${id}`;
  const form = h(
    "form",
    { class: "narrow", hidden: true, novalidate: true },
    h("fieldset", {}, h("legend", { text: t("resident.consent.what") }), cats),
    h("fieldset", {}, h("legend", { text: t("resident.consent.why") }), purps),
    h("label", { for: endId, text: t("resident.grant.end") }),
    h("input", { type: "date", id: endId, name: "end", value: consent.period?.end?.slice(0, 10) || "" }),
    h("button", { type: "submit", text: t("resident.consent.narrow-submit") }),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    narrow(consent, form, categories, purposes);
  });
  return form;
}

function endOfDay(date) {
  return date ? new Date(`${date}T23:59:59`).toISOString() : null;
}

function startOfDay(date) {
  return date ? new Date(`${date}T00:00:00`).toISOString() : null;
}

async function narrow(consent, form, offeredCategories, offeredPurposes) {
  const categories = checked(form, "categories");
  const purposes = checked(form, "purposes");
  if (!categories.length || !purposes.length) {
    showAlert(t("resident.grant.pick-both"));
    return;
  }
  const keepAny = (picked, original, offered) =>
    !original.length && picked.length === offered.length ? [] : picked;
  const end = endOfDay(form.elements.end.value) || consent.period?.end || null;
  const body = {
    type: consent.type,
    grantee: consent.grantee,
    holders: consent.holders,
    categories: keepAny(categories, consent.categories, offeredCategories),
    purposes: keepAny(purposes, consent.purposes, offeredPurposes),
    period: { start: consent.period?.start || null, end },
    provisions: consent.provisions,
  };
  const done = await attempt(() =>
    api.json("PUT", `/v1/consents/${encodeURIComponent(consent.consent_id)}`, body),
  );
  if (done) {
    await loadConsents();
    showNotice(t("resident.consent.narrowed", { leaf: done.leaf_index }));
  }
}

async function revoke(consent) {
  const done = await attempt(() =>
    api.json("DELETE", `/v1/consents/${encodeURIComponent(consent.consent_id)}`),
  );
  if (done) {
    await loadConsents();
    showNotice(t("resident.consent.revoked-notice", { leaf: done.leaf_index }));
  }
}

// Each load is numbered: only the latest one renders, so a slow answer about the person acted
// for before cannot overwrite the list of the one acted for now.
let consentLoads = 0;
// The card shown for each consent, by id, with the version and language it was drawn in: a
// reload that finds the same version keeps that very card, so a form the resident has open in
// it (boxes unticked, a date typed) is never closed or reset under their hand.
const shownCards = new Map();

function cardFor(item) {
  const consent = item.consent;
  const key = `${consent.version}:${consent.status}:${document.documentElement.lang}`;
  const shown = shownCards.get(consent.consent_id);
  if (shown && shown.key === key) return shown.card;
  const card = consentCard(item);
  shownCards.set(consent.consent_id, { key, card });
  return card;
}

/** Replace `el`'s children by `nodes` only if they differ, so unchanged cards stay in place
 * (moving a card would take the focus from the input in it). */
function show(el, nodes) {
  const current = [...el.children];
  if (current.length === nodes.length && current.every((node, i) => node === nodes[i])) return;
  clear(el, nodes);
}

async function loadConsents() {
  const load = ++consentLoads;
  const list = $("#consent-list");
  list.setAttribute("aria-busy", "true");
  try {
    const items = await attempt(() => api.get(`/v1/consents${subjectQuery()}`));
    if (!items || load !== consentLoads) return;
    state.consents = new Map(items.map((item) => [item.consent.consent_id, item.consent]));
    const active = items.filter((i) => i.consent.status === "active");
    const revoked = items.filter((i) => i.consent.status !== "active");
    const ids = new Set(items.map((i) => i.consent.consent_id));
    for (const id of shownCards.keys()) if (!ids.has(id)) shownCards.delete(id);
    show(list, active.length ? active.map(cardFor) : [h("p", { class: "empty", text: t("resident.consents.none") })]);
    show($("#revoked-list"), revoked.map(cardFor));
    $("#revoked-box").hidden = !revoked.length;
  } finally {
    if (load === consentLoads) list.removeAttribute("aria-busy");
  }
}

// -- granting ------------------------------------------------------------------------------

function renderGrantForm() {
  const select = $("#grantee");
  const institutions = [...state.directory.values()].filter((i) => i.active);
  clear(
    select,
    h("option", { value: "", text: t("resident.grant.choose") }),
    h(
      "optgroup",
      { label: t("resident.grant.institutions") },
      institutions.map((i) => h("option", { value: `institution:${i.id}`, text: `${i.name} (${term("institution-type", i.type)})` })),
    ),
    h(
      "optgroup",
      { label: t("resident.grant.types") },
      INSTITUTION_TYPES.map((type) =>
        h("option", { value: `type:${type}`, text: t("resident.grantee.any-type", { type: term("institution-type", type) }) }),
      ),
    ),
  );
  checkboxes($("#grant-categories"), "category", CATEGORIES, "categories");
  checkboxes($("#grant-purposes"), "purpose", PURPOSES, "purposes");
}

async function grant(event) {
  event.preventDefault();
  const form = event.target;
  const [kind, value] = form.elements.grantee.value.split(/:(.*)/s);
  const categories = checked(form, "categories");
  const purposes = checked(form, "purposes");
  if (!value) {
    showAlert(t("resident.grant.pick-grantee"));
    form.elements.grantee.focus();
    return;
  }
  if (!categories.length || !purposes.length) {
    showAlert(t("resident.grant.pick-both"));
    return;
  }
  const body = {
    grantee: kind === "institution" ? { institution: value } : { institution_type: value },
    categories,
    purposes,
    period: { start: startOfDay(form.elements.start.value), end: endOfDay(form.elements.end.value) },
  };
  const me = session.claims()?.sub;
  if (state.acting && state.acting !== me) body.subject = state.acting;
  const done = await attempt(() => api.json("POST", "/v1/consents", body));
  if (done) {
    form.reset();
    await loadConsents();
    state.showTab("consents");
    showNotice(t("resident.grant.done", { leaf: done.leaf_index }));
  }
}

// -- session -------------------------------------------------------------------------------

function renderActing() {
  const me = session.claims()?.sub;
  const select = $("#acting");
  clear(
    select,
    h("option", { value: me, text: t("resident.acting.self") }),
    children().map((child) => h("option", { value: child, text: t("resident.acting.child", { id: short(child) }) })),
  );
  select.value = state.acting || me;
}

async function refresh(tab) {
  if (tab === "history") await loadHistory();
  else if (tab === "consents") await loadConsents();
}

async function enter() {
  const directory = await attempt(() => api.get("/v1/institutions"));
  if (!directory) {
    session.signOut();
    return;
  }
  state.directory = new Map(directory.map((i) => [i.id, i]));
  state.acting = session.claims()?.sub;
  renderActing();
  renderGrantForm();
  state.showTab = installTabs((tab) => refresh(tab));
  $("#signin").hidden = true;
  $("#app").hidden = false;
  $("#sign-out").hidden = false;
}

function start() {
  startPage();
  installSignIn(session, "resident", enter);
  $("#acting").addEventListener("change", async (event) => {
    state.acting = event.target.value;
    const current = document.querySelector('.tab[aria-current="page"]')?.dataset.tab;
    await loadConsents();
    if (current === "history") await loadHistory();
  });
  $("#child-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("#child-subject");
    const subject = input.value.trim();
    if (!/^[0-9a-f]{64}$/.test(subject)) {
      showAlert(t("resident.guardian.invalid"));
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    // The API says whether this caller is the child's guardian; remember the child only then.
    const ok = await attempt(() => api.get(`/v1/consents?subject=${subject}`));
    if (!ok) return;
    input.removeAttribute("aria-invalid");
    localStorage.setItem(childrenKey(), JSON.stringify([...new Set([...children(), subject])]));
    state.acting = subject;
    input.value = "";
    renderActing();
    $("#add-child").open = false;
    await loadConsents();
    showNotice(t("resident.guardian.added"));
  });
  $("#grant-form").addEventListener("submit", grant);
  $("#history-refresh").addEventListener("click", loadHistory);
  onLangChange(async () => {
    if (!session.token()) return;
    renderActing();
    renderGrantForm();
    const current = document.querySelector('.tab[aria-current="page"]')?.dataset.tab;
    await refresh(current || "consents");
  });
  if (session.token()) enter().catch((error) => showAlert(String(error)));
}

start();
