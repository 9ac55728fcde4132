// The hospital console: request a resident's records for a purpose, see the decision and the
// grant, redeem a grant as the holder, open break-glass and file its justification, and list
// the institution's own requests. It signs its own short-lived tokens with its key (jwt.js).

import { Api } from "./api.js";
import {
  attempt,
  CATEGORIES,
  checkboxes,
  EMERGENCY_CATEGORIES,
  installSignIn,
  installTabs,
  meta,
  PURPOSES,
  showAlert,
  short,
  startPage,
} from "./common.js";
import { $, checked, clear, h } from "./dom.js";
import { formatTime, list, onLangChange, t, term } from "./i18n.js";
import { importInstitutionKey, InstitutionSigner } from "./jwt.js";
import { Session } from "./session.js";

const session = new Session("hospital");
const state = { signer: null, me: null, directory: new Map() };
const api = new Api(async () => (state.signer ? state.signer.token() : session.token()));

function name(id) {
  const found = state.directory.get(id);
  return found ? `${found.name} (${id})` : id;
}

function field(label, value, attrs = {}) {
  return [h("dt", { text: label }), h("dd", { ...attrs, text: value })];
}

// -- requesting ----------------------------------------------------------------------------

function renderRequestForm() {
  const holder = $("#holder");
  const keep = holder.value;
  clear(
    holder,
    h("option", { value: "", text: t("hospital.request.choose-holder") }),
    [...state.directory.values()]
      .filter((i) => i.active && i.id !== state.me)
      .map((i) => h("option", { value: i.id, text: `${i.name} (${i.id})` })),
  );
  holder.value = keep;
  const emergency = $("#emergency").checked;
  const purpose = $("#purpose");
  const keptPurpose = purpose.value;
  const purposes = emergency ? ["emergency"] : PURPOSES.filter((p) => p !== "emergency");
  clear(purpose, purposes.map((p) => h("option", { value: p, text: term("purpose", p) })));
  if (purposes.includes(keptPurpose)) purpose.value = keptPurpose;
  const categories = emergency ? EMERGENCY_CATEGORIES : CATEGORIES.filter((c) => !c.startsWith("emergency-"));
  checkboxes($("#request-categories"), "category", categories, "categories");
}

function handover(decision, body) {
  return JSON.stringify(
    {
      grant_token: decision.grant.token,
      requester: state.me,
      holder: body.holder,
      subject: body.subject,
      categories: body.categories,
      purpose: body.purpose,
    },
    null,
    2,
  );
}

function justificationForm(requestId) {
  const id = `justify-${requestId}`;
  const form = h(
    "form",
    { class: "justify", novalidate: true, "data-request-id": requestId },
    h("label", { for: id, text: t("hospital.justify.text") }),
    h("textarea", { id, name: "text", rows: "3", required: true }),
    h("button", { type: "submit", text: t("hospital.justify.submit") }),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = form.elements.text.value.trim();
    if (!text) {
      showAlert(t("hospital.justify.empty"));
      form.elements.text.setAttribute("aria-invalid", "true");
      form.elements.text.focus();
      return;
    }
    const done = await attempt(() =>
      api.json("POST", `/v1/break-glass/${requestId}/justification`, { text }),
    );
    if (done) {
      form.replaceWith(
        h("p", {
          class: done.late ? "status-late" : "status-justified",
          "data-testid": "justified",
          "data-late": String(done.late),
          text: t(done.late ? "hospital.justify.done-late" : "hospital.justify.done", { leaf: done.leaf_index }),
        }),
      );
    }
  });
  return form;
}

function decisionCard(decision, body) {
  const card = h(
    "article",
    { class: "card", "data-testid": "decision", "data-decision": decision.decision, "data-request-id": decision.request_id },
    h("h3", { class: `decision-${decision.decision}`, text: t(`hospital.decision.${decision.decision}`) }),
    h(
      "dl",
      {},
      field(t("hospital.decision.reason"), term("reason", decision.reason)),
      field(t("hospital.decision.relied-on"), decision.relied_on.length ? list(decision.relied_on.map((r) => short(r.consent_id))) : t("resident.history.no-consent")),
      field(t("hospital.decision.request-id"), decision.request_id),
      field(t("hospital.decision.leaf"), String(decision.leaf_index)),
      field(t("hospital.decision.at"), formatTime(decision.at)),
      decision.breakglass ? field(t("hospital.decision.justify-by"), formatTime(decision.justify_by)) : null,
      decision.grant ? field(t("hospital.decision.grant-expires"), formatTime(decision.grant.expires_at)) : null,
    ),
  );
  if (decision.breakglass) card.append(h("p", { class: "flag", text: t("hospital.decision.breakglass") }));
  if (decision.grant) {
    card.append(
      h("label", { for: "handover-out", text: t("hospital.decision.handover") }),
      h("textarea", { id: "handover-out", rows: "8", readonly: true, "aria-describedby": "handover-out-help" }, handover(decision, body)),
      h("p", { id: "handover-out-help", class: "help", text: t("hospital.decision.handover-help") }),
    );
  }
  if (decision.breakglass) card.append(justificationForm(decision.request_id));
  return card;
}

async function requestAccess(event) {
  event.preventDefault();
  const form = event.target;
  const subject = form.elements.subject.value.trim();
  const categories = checked(form, "categories");
  form.elements.subject.removeAttribute("aria-invalid");
  if (!/^[0-9a-f]{64}$/.test(subject)) {
    showAlert(t("hospital.request.bad-subject"));
    form.elements.subject.setAttribute("aria-invalid", "true");
    form.elements.subject.focus();
    return;
  }
  if (!form.elements.holder.value) {
    showAlert(t("hospital.request.pick-holder"));
    form.elements.holder.focus();
    return;
  }
  if (!categories.length) {
    showAlert(t("hospital.request.pick-categories"));
    return;
  }
  const body = {
    subject,
    holder: form.elements.holder.value,
    categories,
    purpose: form.elements.purpose.value,
    emergency: form.elements.emergency.checked,
  };
  const decision = await attempt(() => api.json("POST", "/v1/access-requests", body));
  if (decision) clear($("#decision"), decisionCard(decision, body));
}

// -- redeeming -----------------------------------------------------------------------------

async function redeem(event) {
  event.preventDefault();
  const input = $("#handover");
  let grant;
  try {
    grant = JSON.parse(input.value);
    if (!grant || typeof grant !== "object") throw new Error("not an object");
  } catch {
    showAlert(t("hospital.redeem.bad-json"));
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return;
  }
  input.removeAttribute("aria-invalid");
  if (grant.holder && grant.holder !== state.me) {
    showAlert(t("hospital.redeem.other-holder", { holder: grant.holder }));
    return;
  }
  const { holder: _holder, ...body } = grant;
  const released = await attempt(() => api.json("POST", "/v1/grants/redeem", body));
  if (!released) return;
  input.value = "";
  clear(
    $("#release"),
    h(
      "article",
      { class: "card", "data-testid": "release", "data-request-id": released.request_id },
      h("h3", { class: "decision-permit", text: t("hospital.redeem.done") }),
      h(
        "dl",
        {},
        field(t("hospital.mine.subject"), released.subject),
        field(t("hospital.redeem.requester"), name(released.requester)),
        field(t("hospital.request.purpose"), term("purpose", released.purpose)),
        field(t("hospital.request.categories"), list(released.categories.map((c) => term("category", c)))),
        field(t("hospital.decision.leaf"), String(released.leaf_index)),
        field(t("hospital.decision.at"), formatTime(released.at)),
      ),
    ),
  );
}

// -- own requests --------------------------------------------------------------------------

function eventsWords(request) {
  if (!request.events.length) return "—";
  return list(request.events.map((e) => (e.kind === "access.released" ? t("resident.outcome.released") : `${t("resident.outcome.refused")}: ${term("refusal", e.refusal)}`)));
}

async function loadMine() {
  const requests = await attempt(() => api.getAll("/v1/access-requests"));
  if (!requests) return;
  const header = ["at", "role", "subject", "counterpart", "purpose", "categories", "decision", "events", "actions"];
  const rows = [...requests].reverse().map((r) => {
    const asRequester = r.requester === state.me;
    return h(
      "tr",
      { "data-request-id": r.request_id, "data-decision": r.decision, "data-breakglass": String(r.breakglass) },
      h("td", { text: formatTime(r.at) }),
      h("td", { text: t(asRequester ? "hospital.mine.as-requester" : "hospital.mine.as-holder") }),
      h("td", {}, h("code", { title: r.subject, text: short(r.subject) })),
      h("td", { text: name(asRequester ? r.holder : r.requester) }),
      h("td", { text: term("purpose", r.purpose) }),
      h("td", { text: list(r.categories.map((c) => term("category", c))) }),
      h("td", { class: `decision-${r.decision}`, text: t(`hospital.decision.${r.decision}`) + (r.breakglass ? ` · ${t("hospital.mine.breakglass")}` : "") }),
      h("td", { text: eventsWords(r) }),
      h("td", {}, r.breakglass && asRequester ? justifyButton(r.request_id) : null),
    );
  });
  clear(
    $("#mine-table"),
    rows.length
      ? h(
          "table",
          {},
          h("caption", { class: "visually-hidden", text: t("hospital.mine.heading") }),
          h("thead", {}, h("tr", {}, header.map((k) => h("th", { scope: "col", text: t(`hospital.mine.${k}`) })))),
          h("tbody", {}, rows),
        )
      : h("p", { class: "empty", text: t("hospital.mine.none") }),
  );
}

function justifyButton(requestId) {
  const button = h("button", {
    type: "button",
    class: "secondary",
    text: t("hospital.justify.open"),
    onclick: () => button.replaceWith(justificationForm(requestId)),
  });
  return button;
}

// -- session -------------------------------------------------------------------------------

async function enter() {
  const directory = await attempt(() => api.get("/v1/institutions"));
  if (!directory) {
    state.signer = null;
    session.signOut();
    return;
  }
  state.directory = new Map(directory.map((i) => [i.id, i]));
  $("#who").textContent = `· ${name(state.me)}`;
  renderRequestForm();
  installTabs((tab) => (tab === "mine" ? loadMine() : null));
  $("#signin").hidden = true;
  $("#app").hidden = false;
  $("#sign-out").hidden = false;
}

async function signInWithKey(event) {
  event.preventDefault();
  const form = event.target;
  const id = form.elements.institution.value.trim();
  const file = form.elements.key.files[0];
  if (!id || !file) {
    showAlert(t("hospital.signin.need-both"));
    (id ? form.elements.key : form.elements.institution).focus();
    return;
  }
  let key;
  try {
    key = await importInstitutionKey(await file.text());
  } catch {
    showAlert(t("hospital.signin.bad-key"));
    form.elements.key.setAttribute("aria-invalid", "true");
    return;
  }
  state.signer = new InstitutionSigner(key, id, meta("audience"));
  state.me = id;
  form.reset();
  await enter();
}

function start() {
  startPage();
  $("#key-form").addEventListener("submit", signInWithKey);
  installSignIn(session, "institution", async () => {
    state.me = session.claims().sub;
    await enter();
  });
  $("#emergency").addEventListener("change", renderRequestForm);
  $("#request-form").addEventListener("submit", requestAccess);
  $("#redeem-form").addEventListener("submit", redeem);
  $("#mine-refresh").addEventListener("click", loadMine);
  onLangChange(() => {
    if (!state.me) return;
    renderRequestForm();
    if (!$("#mine").hidden) loadMine();
  });
  if (session.token()) {
    state.me = session.claims().sub;
    enter();
  }
}

start();
