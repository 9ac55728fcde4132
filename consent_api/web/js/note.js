// C2SP signed notes with Ed25519 (hashing/note.py) and tlog checkpoints (hashing/checkpoint.py),
// verified with WebCrypto. A key id is SHA-256(name || "\n" || 0x01 || public key)[:4]; the
// signature covers the note text up to and including the newline before the blank line. A
// checkpoint must be of the expected origin, which is the log key's name. Verification is strict
// (ed25519.js): no small-order or non-canonical key loads, and no signature with a small-order R
// or S >= L verifies.

import { concat, equal, fromBase64Strict, sha256, toHex, utf8 } from "./bytes.js";
import { pointProblem, signatureProblem } from "./ed25519.js";
import { VerifyError } from "./merkle.js";

const SIGNATURE_PREFIX = "\u2014 ";

function validName(name) {
  return name.length > 0 && !/[+\s]/u.test(name);
}

/** Parse a verifier key "<name>+<hash hex8>+<base64(0x01 || key)>" and import it. */
export async function loadVerifier(vkey) {
  const text = vkey.trim();
  // "+" separates the fields, and base64 may hold "+" too: only the first two separate.
  const [name, hashHex] = text.split("+", 2);
  const keyText = text.slice((name || "").length + (hashHex || "").length + 2);
  if (!validName(name || "") || !/^[0-9a-f]{8}$/i.test(hashHex || "")) {
    throw new VerifyError("key-format", "the log key is not C2SP vkey text");
  }
  const key = fromBase64Strict(keyText);
  if (key.length !== 33 || key[0] !== 1) throw new VerifyError("key-format", "the log key is not Ed25519");
  const keyHash = (await sha256(concat(utf8(`${name}\n`), key))).slice(0, 4);
  if (toHex(keyHash) !== hashHex.toLowerCase()) {
    throw new VerifyError("key-format", "the log key's hash does not match its key");
  }
  const weak = pointProblem(key.slice(1));
  if (weak !== null) throw new VerifyError("key-format", `the log key is refused: ${weak}`);
  const publicKey = await crypto.subtle.importKey("raw", key.slice(1), { name: "Ed25519" }, false, [
    "verify",
  ]);
  return { name, keyHash, publicKey, text };
}

/**
 * Verify a signed checkpoint against the verifier and check that it is of the expected `origin`
 * (the log's key name, C2SP's convention and this log's: a key may sign for one log only);
 * return {origin, treeSize, rootHash}.
 */
export async function openCheckpoint(note, verifier, origin = verifier.name) {
  if (typeof note !== "string") throw new VerifyError("note-format", "the checkpoint is not note text");
  const split = note.lastIndexOf("\n\n");
  if (split < 0) throw new VerifyError("note-format", "the note has no blank line before its signatures");
  const text = note.slice(0, split + 1);
  const block = note.slice(split + 2);
  if (!block.endsWith("\n")) throw new VerifyError("note-format", "the note's signatures do not end in a newline");
  let verified = false;
  for (const line of block.slice(0, -1).split("\n")) {
    if (!line.startsWith(SIGNATURE_PREFIX)) throw new VerifyError("note-format", "a signature line is malformed");
    const [name, blobText, ...extra] = line.slice(SIGNATURE_PREFIX.length).split(" ");
    if (extra.length) throw new VerifyError("note-format", "a signature line is malformed");
    const blob = fromBase64Strict(blobText);
    if (name !== verifier.name || blob.length < 5 || !equal(blob.slice(0, 4), verifier.keyHash)) {
      continue; // another key's signature: not ours to judge
    }
    const refused = signatureProblem(blob.slice(4));
    if (refused !== null) throw new VerifyError("bad-signature", `the checkpoint signature is refused: ${refused}`);
    const ok = await crypto.subtle.verify(
      { name: "Ed25519" },
      verifier.publicKey,
      blob.slice(4),
      utf8(text),
    );
    if (!ok) throw new VerifyError("bad-signature", "the checkpoint signature does not verify");
    verified = true;
  }
  if (!verified) throw new VerifyError("no-signature", "the checkpoint has no signature by the log key");
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3) throw new VerifyError("note-format", "the checkpoint has fewer than 3 lines");
  const [noteOrigin, sizeText, rootText] = lines;
  if (noteOrigin !== origin) {
    throw new VerifyError("origin-mismatch", `the checkpoint is of origin ${JSON.stringify(noteOrigin)}, not ${JSON.stringify(origin)}`);
  }
  if (!/^(0|[1-9][0-9]{0,19})$/.test(sizeText)) throw new VerifyError("note-format", "bad checkpoint size");
  const rootHash = fromBase64Strict(rootText);
  if (rootHash.length !== 32) throw new VerifyError("note-format", "the checkpoint root is not 32 bytes");
  return { origin: noteOrigin, treeSize: BigInt(sizeText), rootHash };
}
