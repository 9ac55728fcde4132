// An institution's own short-lived token, signed in this browser with WebCrypto Ed25519 from
// its PKCS#8 PEM private key (as consent_api.auth.sign_institution_token does in Python). The
// key is imported non-extractable and kept in memory only: a reload asks for the file again.

import { fromBase64Strict, toBase64Url, utf8 } from "./bytes.js";

export const TOKEN_TTL = 120;

export async function importInstitutionKey(pem) {
  const match = pem.match(/-----BEGIN PRIVATE KEY-----([\s\S]+?)-----END PRIVATE KEY-----/);
  if (!match) throw new Error("pem");
  const der = fromBase64Strict(match[1].replace(/\s+/g, ""));
  return crypto.subtle.importKey("pkcs8", der, { name: "Ed25519" }, false, ["sign"]);
}

function part(value) {
  return toBase64Url(utf8(JSON.stringify(value)));
}

export async function signInstitutionToken(key, institutionId, audience, ttl = TOKEN_TTL) {
  const now = Math.floor(Date.now() / 1000);
  const jti = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) =>
    b.toString(16).padStart(2, "0"),
  ).join("");
  const header = part({ alg: "EdDSA", typ: "JWT", kid: institutionId });
  const claims = part({
    iss: institutionId,
    sub: institutionId,
    aud: audience,
    iat: now,
    exp: now + ttl,
    jti,
  });
  const signature = await crypto.subtle.sign({ name: "Ed25519" }, key, utf8(`${header}.${claims}`));
  return `${header}.${claims}.${toBase64Url(new Uint8Array(signature))}`;
}

/** Tokens for one institution, signed afresh shortly before the last one expires. */
export class InstitutionSigner {
  constructor(key, institutionId, audience) {
    this.key = key;
    this.institutionId = institutionId;
    this.audience = audience;
    this.current = null;
    this.expires = 0;
  }

  async token() {
    if (!this.current || Date.now() / 1000 > this.expires - 30) {
      this.current = await signInstitutionToken(this.key, this.institutionId, this.audience);
      this.expires = Math.floor(Date.now() / 1000) + TOKEN_TTL;
    }
    return this.current;
  }
}
