// The regulator console: the auditor's latest findings, charts of accesses, denials,
// break-glass and anchoring lag, the anchored checkpoints with their chain transactions, and
// a search by pseudonymous subject or institution. A regulator reads; it changes nothing.

import { Api } from "./api.js";
import { attempt, installSignIn, installTabs, meta, showAlert, short, startPage } from "./common.js";
import { barChart, tally } from "./charts.js";
import { $, clear, h } from "./dom.js";
import { formatTime, list, onLangChange, t, term } from "./i18n.js";
import { Session } from "./session.js";

const session = new Session("regulator");
const api = new Api(async () => session.token());
const state = { directory: new Map() };
const COLORS = { permit: "#0b6e4f", deny: "#a4161a", overdue: "#a4161a", late: "#d97706", ok: "#0b6e4f", pending: "#64748b", lag: "#1d4ed8" };

function name(id) {
  const found = state.directory.get(id);
  return found ? found.name : id;
}

function table(caption, columns, rows, attrs = {}) {
  if (!rows.length) return h("p", { class: "empty", text: t("regulator.none") });
  return h(
    "table",
    attrs,
    h("caption", { class: "visually-hidden", text: caption }),
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", text: t(c) })))),
    h("tbody", {}, rows),
  );
}

// -- findings and charts ---------------------------------------------------------------------

async function loadFindings() {
  const box = $("#findings");
  try {
    const { report, written_at: writtenAt } = await api.get("/v1/audit/report");
    const findings = report.findings || [];
    clear(
      box,
      h(
        "article",
        { class: `card finding ${findings.length ? "" : "ok"}`, "data-testid": "report", "data-findings": findings.length },
        h("h3", { text: findings.length ? t("regulator.findings.some", { count: findings.length }) : t("regulator.findings.none") }),
        h(
          "p",
          { class: "help" },
          t("regulator.findings.meta", { at: formatTime(writtenAt), size: report.verified?.tree_size ?? "?", anchored: report.anchored_size ?? "?" }),
        ),
        h(
          "ul",
          {},
          findings.map((f) =>
            h(
              "li",
              { "data-code": f.code },
              h("strong", { text: term("finding", f.code) }),
              f.tree_size !== undefined ? ` (${t("regulator.findings.tree-size", { size: f.tree_size })})` : "",
              h("br"),
              h("span", { class: "help", text: f.message }),
            ),
          ),
        ),
      ),
    );
  } catch (error) {
    if (error.status === 404) {
      clear(box, h("p", { class: "empty", "data-testid": "no-report", text: `${t("regulator.findings.no-report")} ${error.message}` }));
    } else {
      showAlert(error.message);
    }
  }
}

async function allAnchors() {
  const anchors = [];
  let after = -1;
  for (;;) {
    const page = await api.get(`/v1/log/anchors?after=${after}&limit=1000`);
    anchors.push(...page);
    if (page.length < 1000) return anchors;
    after = page[page.length - 1].tree_size;
  }
}

/** Seconds from the oldest access event an anchor newly covers to the anchor's block time. */
function anchoringLag(anchors, requests) {
  const events = requests.flatMap((r) => [{ leaf: r.leaf_index, at: r.at }, ...r.events.map((e) => ({ leaf: e.leaf_index, at: e.at }))]);
  const rows = [];
  let previous = 0;
  for (const anchor of [...anchors].sort((a, b) => a.tree_size - b.tree_size)) {
    const covered = events.filter((e) => e.leaf >= previous && e.leaf < anchor.tree_size);
    previous = anchor.tree_size;
    if (!covered.length) continue;
    const oldest = Math.min(...covered.map((e) => Date.parse(e.at) / 1000));
    rows.push({ label: `#${anchor.tree_size}`, values: { lag: Math.max(0, Math.round(anchor.anchor.timestamp - oldest)) } });
  }
  return rows.slice(-15);
}

async function loadCharts() {
  const [requests, cases, anchors] = await Promise.all([api.getAll("/v1/access-requests"), api.getAll("/v1/break-glass"), allAnchors()]);
  const decisions = [
    { key: "permit", label: t("hospital.decision.permit"), color: COLORS.permit },
    { key: "deny", label: t("hospital.decision.deny"), color: COLORS.deny },
  ];
  const caseSeries = [
    { key: "overdue", label: t("regulator.status.overdue"), color: COLORS.overdue },
    { key: "justified-late", label: t("regulator.status.justified-late"), color: COLORS.late },
    { key: "pending", label: t("regulator.status.pending"), color: COLORS.pending },
    { key: "justified", label: t("regulator.status.justified"), color: COLORS.ok },
  ];
  const overdue = cases.filter((c) => c.status === "overdue" || c.status === "justified-late");
  clear(
    $("#charts"),
    barChart({ id: "by-institution", title: t("regulator.chart.by-institution"), rows: tally(requests, (r) => r.requester, (r) => r.decision, name), series: decisions, empty: t("regulator.none") }),
    barChart({ id: "by-purpose", title: t("regulator.chart.by-purpose"), rows: tally(requests, (r) => r.purpose, (r) => r.decision, (p) => term("purpose", p)), series: decisions, empty: t("regulator.none") }),
    barChart({ id: "denials", title: t("regulator.chart.denials"), rows: tally(requests.filter((r) => r.decision === "deny"), (r) => r.reason, () => "deny", (k) => term("reason", k)), series: [decisions[1]], empty: t("regulator.none") }),
    barChart({ id: "breakglass", title: t("regulator.chart.breakglass"), rows: tally(cases, (c) => c.requester, (c) => c.status, name), series: caseSeries, empty: t("regulator.none") }),
    barChart({ id: "overdue", title: t("regulator.chart.overdue", { count: overdue.length }), rows: tally(overdue, (c) => c.requester, (c) => c.status, name), series: caseSeries.slice(0, 2), empty: t("regulator.none") }),
    barChart({ id: "anchoring-lag", title: t("regulator.chart.lag"), rows: anchoringLag(anchors, requests), series: [{ key: "lag", label: t("regulator.chart.lag-seconds"), color: COLORS.lag }], unit: " s", empty: t("regulator.none") }),
  );
}

// -- break-glass, anchors, search ----------------------------------------------------------

async function openJustification(requestId, cell) {
  const opened = await attempt(() => api.get(`/v1/break-glass/${requestId}/justification`));
  if (opened) clear(cell, h("q", { text: opened.text }), h("br"), h("code", { class: "help", text: `${t("regulator.breakglass.commitment")} ${short(opened.commitment)}` }));
}

async function loadBreakGlass() {
  const overdueOnly = $("#overdue-only").checked;
  const cases = await attempt(() => api.getAll(`/v1/break-glass${overdueOnly ? "?overdue=true" : ""}`));
  if (!cases) return;
  const rows = [...cases].reverse().map((c) => {
    const justification = h("td", {});
    if (c.justified_at) {
      justification.append(h("button", { type: "button", class: "link", text: t("regulator.breakglass.open"), onclick: () => openJustification(c.request_id, justification) }));
    }
    return h(
      "tr",
      { "data-request-id": c.request_id, "data-status": c.status },
      h("td", { text: formatTime(c.at) }),
      h("td", { text: name(c.requester) }),
      h("td", { text: name(c.holder) }),
      h("td", {}, h("code", { title: c.subject, text: short(c.subject) })),
      h("td", { text: list(c.categories.map((x) => term("category", x))) }),
      h("td", { text: formatTime(c.justify_by) }),
      h("td", { class: `status-${c.status === "justified-late" ? "late" : c.status}`, text: t(`regulator.status.${c.status}`) }),
      justification,
    );
  });
  const columns = ["regulator.col.at", "regulator.col.requester", "regulator.col.holder", "regulator.col.subject", "regulator.col.categories", "regulator.col.justify-by", "regulator.col.status", "regulator.col.justification"];
  clear($("#breakglass-table"), table(t("regulator.breakglass.heading"), columns, rows));
  $("#breakglass-table").dataset.filter = overdueOnly ? "overdue" : "all";
}

function txCell(tx) {
  const template = meta("explorer");
  if (!template) return h("td", {}, h("code", { text: tx }));
  return h("td", {}, h("a", { href: template.replace("{tx}", tx), rel: "noopener noreferrer", target: "_blank", text: short(tx) }));
}

async function loadAnchors() {
  const anchors = await attempt(allAnchors);
  if (!anchors) return;
  const rows = [...anchors].reverse().map((a) =>
    h(
      "tr",
      { "data-tree-size": a.tree_size },
      h("td", { text: String(a.tree_size) }),
      h("td", {}, h("code", { title: a.anchor.root_hash, text: short(a.anchor.root_hash) })),
      h("td", { text: `${a.anchor.chain_id} / ${a.anchor.block_number}` }),
      h("td", { text: formatTime(new Date(a.anchor.timestamp * 1000).toISOString()) }),
      txCell(a.anchor.tx_hash),
    ),
  );
  const columns = ["regulator.col.tree-size", "regulator.col.root", "regulator.col.block", "regulator.col.anchored-at", "regulator.col.tx"];
  clear($("#anchors-table"), table(t("regulator.anchors.heading"), columns, rows));
}

function requestRow(r) {
  return h(
    "tr",
    { "data-request-id": r.request_id, "data-decision": r.decision },
    h("td", { text: formatTime(r.at) }),
    h("td", {}, h("code", { title: r.subject, text: short(r.subject) })),
    h("td", { text: name(r.requester) }),
    h("td", { text: name(r.holder) }),
    h("td", { text: term("purpose", r.purpose) }),
    h("td", { class: `decision-${r.decision}`, text: `${t(`hospital.decision.${r.decision}`)} · ${term("reason", r.reason)}${r.breakglass ? ` · ${t("hospital.mine.breakglass")}` : ""}` }),
    h("td", { text: r.relied_on.map((x) => short(x.consent_id)).join(" ") || "—" }),
    h("td", { text: String(r.leaf_index) }),
  );
}

async function search(event) {
  event.preventDefault();
  const form = event.target;
  const subject = form.elements.subject.value.trim();
  const institution = form.elements.institution.value;
  form.elements.subject.removeAttribute("aria-invalid");
  if (subject && !/^[0-9a-f]{64}$/.test(subject)) {
    showAlert(t("hospital.request.bad-subject"));
    form.elements.subject.setAttribute("aria-invalid", "true");
    form.elements.subject.focus();
    return;
  }
  if (!subject && !institution) {
    showAlert(t("regulator.search.need-one"));
    form.elements.subject.focus();
    return;
  }
  const query = new URLSearchParams();
  if (subject) query.set("subject", subject);
  if (institution) query.set("institution", institution);
  const found = await attempt(() => api.getAll(`/v1/access-requests?${query}`));
  if (!found) return;
  const columns = ["regulator.col.at", "regulator.col.subject", "regulator.col.requester", "regulator.col.holder", "regulator.col.purpose", "regulator.col.decision", "regulator.col.consents", "regulator.col.leaf"];
  clear(
    $("#search-results"),
    h("p", { "data-testid": "search-count", "data-count": found.length, text: t("regulator.search.count", { count: found.length }) }),
    table(t("regulator.search.heading"), columns, [...found].reverse().map(requestRow)),
  );
}

function renderSearchForm() {
  const select = $("#search-institution");
  const keep = select.value;
  clear(select, h("option", { value: "", text: t("regulator.search.any") }), [...state.directory.values()].map((i) => h("option", { value: i.id, text: `${i.name} (${i.id})` })));
  select.value = keep;
}

// -- session -------------------------------------------------------------------------------

async function show(tab) {
  if (tab === "overview") {
    await loadFindings();
    await attempt(loadCharts);
  } else if (tab === "breakglass") await loadBreakGlass();
  else if (tab === "anchors") await loadAnchors();
}

async function enter() {
  const directory = await attempt(() => api.get("/v1/institutions"));
  if (!directory) {
    session.signOut();
    return;
  }
  state.directory = new Map(directory.map((i) => [i.id, i]));
  renderSearchForm();
  installTabs(show);
  $("#signin").hidden = true;
  $("#app").hidden = false;
  $("#sign-out").hidden = false;
}

function start() {
  startPage();
  installSignIn(session, "regulator", enter);
  $("#overdue-only").addEventListener("change", loadBreakGlass);
  $("#search-form").addEventListener("submit", search);
  onLangChange(() => {
    if (!session.token()) return;
    renderSearchForm();
    show(document.querySelector('.tab[aria-current="page"]')?.dataset.tab || "overview");
  });
  if (session.token()) enter();
}

start();
