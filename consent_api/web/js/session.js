// Who is signed in. A platform token (resident, regulator) is kept in sessionStorage, so it
// dies with the tab; its role is read from its claims only to refuse signing into the wrong
// app (the API checks the signature and the role on every call anyway).

import { fromBase64Url } from "./bytes.js";

export function claimsOf(token) {
  const parts = (token || "").trim().split(".");
  if (parts.length !== 3) return null;
  try {
    return JSON.parse(new TextDecoder().decode(fromBase64Url(parts[1])));
  } catch {
    return null;
  }
}

export class Session {
  constructor(app) {
    this.key = `consent-ledger.${app}.token`;
  }

  token() {
    const token = sessionStorage.getItem(this.key);
    const claims = claimsOf(token);
    if (!claims || (claims.exp && claims.exp * 1000 < Date.now())) return null;
    return token;
  }

  claims() {
    return claimsOf(this.token());
  }

  /** Keep `token` if it is a token of `role`; return an i18n key describing why not, or null. */
  signIn(token, role) {
    const claims = claimsOf(token);
    if (!claims) return "error.token-malformed";
    if (claims.exp && claims.exp * 1000 < Date.now()) return "error.token-expired";
    const tokenRole = claims.role || "institution";
    if (tokenRole !== role) return `error.wrong-role.${role}`;
    sessionStorage.setItem(this.key, token.trim());
    return null;
  }

  signOut() {
    sessionStorage.removeItem(this.key);
  }
}
