// Witness cosignatures (C2SP tlog-cosignature, timestamped Ed25519: hashing/cosignature.py)
// and the witness policy they must meet (C2SP tlog-policy: hashing/witness_policy.py), with
// WebCrypto. A cosigner key id is SHA-256(name || "\n" || 0x04 || public key)[:4]; its
// signature is 8 bytes of big-endian time, then Ed25519 over "cosignature/v1\ntime <t>\n" and
// the checkpoint text. Lines of keys the policy does not name are ignored.

import { concat, equal, fromBase64Strict, sha256, toHex, utf8 } from "./bytes.js";
import { VerifyError } from "./merkle.js";
import { loadVerifier } from "./note.js";

async function loadCosigner(vkey) {
  const [name, idHex] = vkey.split("+", 2);
  const key = fromBase64Strict(vkey.slice((name || "").length + (idHex || "").length + 2));
  if (!name || !/^[0-9a-f]{8}$/i.test(idHex || "") || key.length !== 33 || key[0] !== 4) {
    throw new VerifyError("policy-format", "a witness key is not a cosignature vkey");
  }
  const keyId = (await sha256(concat(utf8(`${name}\n`), key))).slice(0, 4);
  if (toHex(keyId) !== idHex.toLowerCase()) throw new VerifyError("policy-format", "a witness key id does not match");
  const publicKey = await crypto.subtle.importKey("raw", key.slice(1), { name: "Ed25519" }, false, ["verify"]);
  return { name, keyId, publicKey, raw: key.slice(1) };
}

const MAX_ENTRIES = 256;

function policyError(number, what) {
  return new VerifyError("policy-format", `policy line ${number}: ${what}`);
}

/**
 * Parse a policy file: {witnesses: Map(name -> cosigner), groups: Map(name -> {k, members}), quorum}.
 * The rules are hashing/witness_policy.py's, line for line: items split on ASCII spaces and
 * tabs only, printable ASCII outside comments, no control character anywhere, names and
 * witness keys once each, at most 256 entries; tests/test_web_verify.py holds the two to it.
 */
export async function parsePolicy(text) {
  const witnesses = new Map();
  const groups = new Map();
  const seenKeys = new Set();
  let logs = 0;
  let quorum = null;
  for (const [index, raw] of text.split("\n").entries()) {
    const number = index + 1;
    if (/[\x00-\x08\x0a-\x1f]/.test(raw)) throw policyError(number, "control character");
    const line = raw.replace(/^[ \t]+|[ \t]+$/g, "");
    if (!line || line.startsWith("#")) continue;
    if (!/^[\t\x20-\x7e]*$/.test(line)) throw policyError(number, "only printable ASCII, spaces and tabs");
    if (logs + witnesses.size + groups.size >= MAX_ENTRIES) throw policyError(number, `more than ${MAX_ENTRIES} entries`);
    const [word, name, ...rest] = line.split(/[ \t]+/);
    const defined = (n) => n === "none" || witnesses.has(n) || groups.has(n);
    if (word === "log" && name !== undefined && rest.length <= 1) {
      await loadVerifier(name).catch(() => {
        throw policyError(number, "a log key is not a note vkey");
      });
      logs += 1;
    } else if (word === "witness" && (rest.length === 1 || rest.length === 2) && !defined(name)) {
      const cosigner = await loadCosigner(rest[0]);
      const raw32 = toHex(cosigner.raw);
      if (seenKeys.has(raw32)) throw policyError(number, "witness key listed twice");
      seenKeys.add(raw32);
      witnesses.set(name, cosigner);
    } else if (word === "group" && rest.length >= 2 && !defined(name) && rest.slice(1).every((m) => m !== "none" && defined(m))) {
      const members = rest.slice(1);
      const k = rest[0] === "all" ? members.length : rest[0] === "any" ? 1 : /^[1-9][0-9]*$/.test(rest[0]) ? Number(rest[0]) : 0;
      if (k < 1 || k > members.length || new Set(members).size !== members.length) throw policyError(number, "a bad group");
      groups.set(name, { k, members });
    } else if (word === "quorum" && name !== undefined && rest.length === 0 && quorum === null && defined(name)) {
      quorum = name;
    } else {
      throw policyError(number, "expected log, witness, group or quorum");
    }
  }
  if (quorum === null) throw new VerifyError("policy-format", "the policy has no quorum");
  return { witnesses, groups, quorum };
}

function holds(policy, name, cosigned) {
  if (name === "none") return true;
  const group = policy.groups.get(name);
  if (!group) return cosigned.has(name);
  return group.members.filter((m) => holds(policy, m, cosigned)).length >= group.k;
}

/**
 * Check a signed note's cosignatures against `policy`; return {cosignedBy: [policy names],
 * met}. A line whose name and key id are a policy witness's but that does not verify throws.
 */
export async function checkCosignatures(note, policy) {
  const split = note.lastIndexOf("\n\n");
  if (split < 0) throw new VerifyError("note-format", "the note has no blank line before its signatures");
  const text = utf8(note.slice(0, split + 1));
  const cosigned = new Set();
  for (const line of note.slice(split + 2, -1).split("\n")) {
    const [name, blobText] = line.slice(2).split(" ");
    for (const [policyName, w] of policy.witnesses) {
      const blob = fromBase64Strict(blobText);
      if (w.name !== name || blob.length !== 76 || !equal(blob.slice(0, 4), w.keyId)) continue;
      const time = new DataView(blob.buffer, blob.byteOffset + 4, 8).getBigUint64(0);
      const message = concat(utf8(`cosignature/v1\ntime ${time}\n`), text);
      if (time >= 2n ** 63n || !(await crypto.subtle.verify({ name: "Ed25519" }, w.publicKey, blob.slice(12), message))) {
        throw new VerifyError("bad-cosignature", `the cosignature by ${policyName} does not verify`);
      }
      cosigned.add(policyName);
    }
  }
  return { cosignedBy: [...cosigned].sort(), met: holds(policy, policy.quorum, cosigned) };
}
