// The verified mark of a history entry, computed here and not taken from the server: the page
// re-encodes the logged event (RFC 8785), hashes it as a leaf, walks the inclusion proof to a
// root, and checks that root against a checkpoint whose Ed25519 signature verifies under the
// log key pinned in this browser. The entry shown must be the event that was hashed.

import { canonicalize } from "./jcs.js";
import { fromBase64Strict, sha256, toHex, utf8 } from "./bytes.js";
import { leafHash, verifyInclusion, VerifyError } from "./merkle.js";
import { openCheckpoint } from "./note.js";

const COMPARED = ["request_id", "requester", "holder", "purpose"];

function sameInstant(a, b) {
  return typeof a === "string" && typeof b === "string" && Date.parse(a) === Date.parse(b);
}

function sameSet(a, b) {
  return JSON.stringify([...(a || [])].sort()) === JSON.stringify([...(b || [])].sort());
}

/** Throw unless what the entry shows is what the logged event says. */
export function checkEntryMatchesEvent(entry, event) {
  if (!event || event.kind !== entry.kind || typeof event.data !== "object") {
    throw new VerifyError("entry-mismatch", "the receipt is for another kind of event");
  }
  const data = event.data;
  for (const name of COMPARED) {
    if (data[name] !== entry[name]) throw new VerifyError("entry-mismatch", `the entry's ${name} is not the logged one`);
  }
  if (!sameInstant(data.at, entry.at)) throw new VerifyError("entry-mismatch", "the entry's time is not the logged one");
  if (!sameSet(data.categories, entry.categories)) {
    throw new VerifyError("entry-mismatch", "the entry's categories are not the logged ones");
  }
  const relied = (data.relied_on || []).map((r) => r.consent_id);
  if (!sameSet(relied, entry.relied_on.map((r) => r.consent_id))) {
    throw new VerifyError("entry-mismatch", "the consents relied on are not the logged ones");
  }
  if (Boolean(data.breakglass) !== Boolean(entry.breakglass)) {
    throw new VerifyError("entry-mismatch", "the break-glass flag is not the logged one");
  }
  if (entry.kind === "access.decided" && data.decision !== entry.decision) {
    throw new VerifyError("entry-mismatch", "the decision is not the logged one");
  }
}

/**
 * {status: "verified" | "failed" | "pending", code, reason} for one history entry (`code` names
 * the check that failed); `verifier` is the
 * pinned log key from note.loadVerifier.
 */
export async function verifyEntry(entry, verifier) {
  const receipt = entry.receipt;
  if (!receipt) return { status: "pending", reason: "" };
  if (!globalThis.crypto?.subtle) {
    // WebCrypto exists only in a secure context: the page must be served over HTTPS (or localhost).
    return { status: "failed", code: "insecure-context", reason: location.origin };
  }
  try {
    if (receipt.receipt_version !== 1) throw new VerifyError("receipt-format", "unknown receipt version");
    if (receipt.leaf_index !== entry.leaf_index) {
      throw new VerifyError("entry-mismatch", "the receipt is for another leaf");
    }
    checkEntryMatchesEvent(entry, receipt.event);
    const checkpoint = await openCheckpoint(receipt.checkpoint, verifier);
    if (BigInt(receipt.tree_size) !== checkpoint.treeSize) {
      throw new VerifyError("tree-size-mismatch", "the proof is for another tree size than the checkpoint");
    }
    const leafData = utf8(canonicalize({ kind: receipt.event.kind, data: receipt.event.data }));
    const proof = receipt.proof.map((h) => fromBase64Strict(h));
    await verifyInclusion(
      await leafHash(leafData),
      receipt.leaf_index,
      receipt.tree_size,
      proof,
      checkpoint.rootHash,
    );
    const anchor = receipt.anchor || {};
    const logId = `0x${toHex(await sha256(utf8(checkpoint.origin)))}`;
    if (
      BigInt(anchor.tree_size) !== checkpoint.treeSize ||
      anchor.root_hash !== `0x${toHex(checkpoint.rootHash)}` ||
      anchor.log_id !== logId
    ) {
      throw new VerifyError("anchor-mismatch", "the anchor record is not of this checkpoint");
    }
    return { status: "verified", reason: "", anchor };
  } catch (error) {
    const code = error instanceof VerifyError ? error.code : "receipt-format";
    return { status: "failed", code, reason: error instanceof Error ? error.message : String(error) };
  }
}
