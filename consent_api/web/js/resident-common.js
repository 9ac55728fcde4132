// What the resident's app shares between its parts: the session, the API, the state of the
// page, and the words for institutions, grantees and periods.

import { Api } from "./api.js";
import { h } from "./dom.js";
import { formatDate, list, t, term } from "./i18n.js";
import { Session } from "./session.js";

export const session = new Session("resident");
export const api = new Api(async () => session.token());
export const state = { directory: new Map(), consents: new Map(), acting: null, showTab: null };

export function institutionName(id) {
  const found = state.directory.get(id);
  return found ? `${found.name} (${id})` : id;
}

export function granteeWords(grantee) {
  if (!grantee) return t("resident.grantee.nobody");
  if (grantee.institution) return institutionName(grantee.institution);
  return t("resident.grantee.any-type", { type: term("institution-type", grantee.institution_type) });
}

export function periodWords(period) {
  const start = period?.start;
  const end = period?.end;
  if (start && end) return t("resident.period.between", { start: formatDate(start), end: formatDate(end) });
  if (end) return t("resident.period.until", { end: formatDate(end) });
  if (start) return t("resident.period.from", { start: formatDate(start) });
  return t("resident.period.open");
}

export function words(kind, codes, anyKey) {
  return codes && codes.length ? list(codes.map((c) => term(kind, c))) : t(anyKey);
}

export function field(label, value) {
  return [h("dt", { text: label }), h("dd", { text: value })];
}

export function subjectQuery() {
  const me = session.claims()?.sub;
  return state.acting && state.acting !== me ? `?subject=${encodeURIComponent(state.acting)}` : "";
}

