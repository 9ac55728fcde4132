// "Who viewed my records": the resident's access history, each entry with the mark this
// browser computes from its receipt (receipt.js) under the log key pinned on first use; a
// verified entry is shown from the logged event its receipt proves.

import { attempt, short } from "./common.js";
import { $, clear, h } from "./dom.js";
import { formatTime, list, t, term } from "./i18n.js";
import { parsePolicy } from "./cosignature.js";
import { loadVerifier } from "./note.js";
import { verifyEntry } from "./receipt.js";
import { api, field, granteeWords, institutionName, session, state, subjectQuery } from "./resident-common.js";

const KEY_PIN = "consent-ledger.log-key";
const OUTCOME_KEYS = { permit: "permit", deny: "deny", released: "released", refused: "refused" };

async function logVerifier() {
  const served = (await api.text("/v1/log/key")).trim();
  const pinned = localStorage.getItem(KEY_PIN);
  if (pinned && pinned !== served) return { verifier: null, text: pinned, changed: true };
  if (!pinned) localStorage.setItem(KEY_PIN, served);
  return { verifier: await loadVerifier(served), text: served, changed: false };
}

// The witness policy (C2SP tlog-policy) the log publishes, pinned on first use like its key:
// receipts' checkpoints must then carry the cosignatures it names.
const POLICY_PIN = "consent-ledger.witness-policy";

async function witnessPolicy() {
  let text = localStorage.getItem(POLICY_PIN);
  if (!text) {
    try {
      text = await api.text("/v1/log/witness-policy");
    } catch {
      return null;
    }
    // Pinned only once it names witnesses: a log that has none yet may add them later.
    if (/^witness[ \t]/m.test(text)) localStorage.setItem(POLICY_PIN, text);
  }
  // A policy that does not parse fails closed: every entry is marked not verified with the
  // reason, never checked as if there were no policy (a pinned one stays pinned).
  try {
    return await parsePolicy(text);
  } catch (error) {
    return { broken: error.message || String(error) };
  }
}

function markFor(result) {
  const text = {
    verified: t("resident.mark.verified"),
    failed: t("resident.mark.failed"),
    pending: t("resident.mark.pending"),
  }[result.status];
  const mark = h(
    "p",
    { class: `mark ${result.status}`, "data-testid": "mark", "data-reason": result.code || null },
    h("span", { class: "mark-symbol", "aria-hidden": "true", text: { verified: "✓", failed: "✗", pending: "…" }[result.status] }),
    h("span", { text }),
  );
  if (result.status === "verified") {
    // Only what was checked: the size of the signed checkpoint the anchor record names.
    mark.append(h("span", { class: "mark-detail", text: t("resident.mark.anchored", { size: result.anchor.tree_size }) }));
    if (result.witnesses) {
      mark.append(h("span", { class: "mark-detail", "data-testid": "witnesses", text: t("resident.mark.witnessed", { names: list(result.witnesses) }) }));
    }
  }
  if (result.status === "failed") {
    mark.append(
      h("span", { class: "mark-reason", text: t(`verify.${result.code}`) }),
      h("code", { class: "mark-detail", text: result.reason }),
    );
  }
  return mark;
}

function reliedWords(relied) {
  if (!relied.length) return t("resident.history.no-consent");
  return list(
    relied.map((r) => {
      const consent = state.consents.get(r.consent_id);
      const who = consent ? ` · ${granteeWords(consent.grantee)}` : "";
      return `${short(r.consent_id)}${who}`;
    }),
  );
}

async function historyItem(entry, key, subject, policy) {
  const result = key.changed
    ? { status: "failed", code: "key-changed", reason: key.text }
    : policy?.broken
      ? { status: "failed", code: "policy-format", reason: policy.broken }
      : await verifyEntry(entry, key.verifier, subject, policy);
  // A verified entry is shown as the hashed event says it; any other only with its mark.
  const shown = result.status === "verified" ? result.shown : entry;
  const outcome = t(`resident.outcome.${OUTCOME_KEYS[shown.decision]}`);
  return h(
    "li",
    {
      class: `card entry ${shown.decision}`,
      "data-leaf-index": entry.leaf_index,
      "data-kind": shown.kind,
      "data-decision": shown.decision,
      "data-verified": result.status,
    },
    h("div", { class: "entry-head" }, h("strong", { text: outcome }), h("time", { datetime: shown.at, text: formatTime(shown.at) })),
    shown.breakglass ? h("p", { class: "flag", text: t("resident.history.breakglass") }) : null,
    h(
      "dl",
      {},
      field(t("resident.history.institution"), institutionName(shown.requester)),
      field(t("resident.history.purpose"), term("purpose", shown.purpose)),
      field(t("resident.history.records"), list(shown.categories.map((c) => term("category", c)))),
      field(t("resident.history.holder"), institutionName(shown.holder)),
      field(t("resident.history.consent"), reliedWords(shown.relied_on)),
      shown.reason && shown.decision === "deny" ? field(t("resident.history.reason"), term("reason", shown.reason)) : null,
      shown.refusal ? field(t("resident.history.reason"), term("refusal", shown.refusal)) : null,
    ),
    markFor(result),
  );
}

// Each load is numbered: only the latest renders (an older one may answer last), and the list
// says which load it shows (data-loaded), so a test can wait for a reload to land.
let historyLoads = 0;

export async function loadHistory() {
  const load = ++historyLoads;
  // The resident whose history this is, fixed before the fetch: every logged event must be theirs.
  const subject = state.acting || session.claims()?.sub;
  const entries = await attempt(() => api.getAll(`/v1/me/access-history${subjectQuery()}`));
  if (!entries || load !== historyLoads) return;
  const key = await attempt(logVerifier);
  if (!key || load !== historyLoads) return;
  $("#log-key").textContent = key.text.split("+").slice(0, 2).join("+");
  const policy = await witnessPolicy();
  if (load !== historyLoads) return;
  const items = await Promise.all([...entries].reverse().map((e) => historyItem(e, key, subject, policy)));
  if (load !== historyLoads) return;
  clear($("#history-list"), items.length ? items : h("li", { class: "empty", text: t("resident.history.none") }));
  $("#history-list").dataset.loaded = String(load);
}

