// The verified mark of a history entry, computed here and not taken from the server: the page
// re-encodes the logged event (RFC 8785), hashes it as a leaf, walks the inclusion proof to a
// root, and checks that root against a checkpoint of the expected origin whose Ed25519
// signature verifies under the log key pinned in this browser. The logged event must be about
// the resident whose history is shown and must say everything the entry says; a verified entry
// is then shown from the logged event itself (shownFromEvent), never from the server's copy.

import { canonicalize } from "./jcs.js";
import { fromBase64Strict, sha256, toHex, utf8 } from "./bytes.js";
import { leafHash, verifyInclusion, VerifyError } from "./merkle.js";
import { checkCosignatures } from "./cosignature.js";
import { openCheckpoint } from "./note.js";

// The outcome an entry shows, by the kind of the logged event; a decision's is in its data.
const OUTCOMES = { "access.released": "released", "access.refused": "refused" };
const DECISIONS = new Set(["permit", "deny"]);
const TEXT_FIELDS = ["request_id", "requester", "holder", "purpose"];

function mismatch(what) {
  return new VerifyError("entry-mismatch", `the entry's ${what} is not the logged one`);
}

function sameInstant(a, b) {
  return typeof a === "string" && typeof b === "string" && !Number.isNaN(Date.parse(a)) && Date.parse(a) === Date.parse(b);
}

function sameSet(a, b) {
  return JSON.stringify([...(a || [])].sort()) === JSON.stringify([...(b || [])].sort());
}

function isStrings(value) {
  return Array.isArray(value) && value.every((v) => typeof v === "string");
}

/**
 * Everything a history entry shows, read from a logged event: outcome (`decision`), reason,
 * refusal, requester, holder, purpose, categories, time, relied-on consents, break-glass flag.
 * Throws unless the event is an access event of the shape the log writes.
 */
export function shownFromEvent(event) {
  const kind = event?.kind;
  const data = event?.data;
  if (kind !== "access.decided" && !(kind in OUTCOMES)) {
    throw new VerifyError("entry-mismatch", "the receipt is not for an access event");
  }
  if (!data || typeof data !== "object" || Array.isArray(data)) {
    throw new VerifyError("receipt-format", "the logged event has no data");
  }
  const decision = kind === "access.decided" ? data.decision : OUTCOMES[kind];
  if (kind === "access.decided" && !DECISIONS.has(decision)) {
    throw new VerifyError("receipt-format", "the logged decision is neither permit nor deny");
  }
  const relied = data.relied_on ?? [];
  if (
    !TEXT_FIELDS.every((name) => typeof data[name] === "string") ||
    typeof data.at !== "string" ||
    !isStrings(data.categories) ||
    !Array.isArray(relied) ||
    !relied.every((r) => r && typeof r.consent_id === "string")
  ) {
    throw new VerifyError("receipt-format", "the logged event is not an access event's shape");
  }
  return {
    kind,
    decision,
    reason: data.reason ?? null,
    refusal: data.refusal ?? null,
    request_id: data.request_id,
    requester: data.requester,
    holder: data.holder,
    purpose: data.purpose,
    categories: [...data.categories],
    at: data.at,
    breakglass: data.breakglass === true,
    relied_on: relied.map((r) => ({ consent_id: r.consent_id, leaf_index: r.leaf_index })),
  };
}

/**
 * Throw unless the logged event is about `subject` (the resident whose history is shown: the
 * signed-in one or the child acted for) and says every field the entry shows; return what the
 * event says, for the page to show.
 */
export function checkEntryMatchesEvent(entry, event, subject) {
  const shown = shownFromEvent(event);
  if (typeof subject !== "string" || !subject || event.data.subject !== subject) {
    throw new VerifyError("subject-mismatch", "the logged event is about another resident");
  }
  if (entry.kind !== shown.kind) throw new VerifyError("entry-mismatch", "the receipt is for another kind of event");
  if (entry.decision !== shown.decision) throw mismatch("outcome");
  for (const name of [...TEXT_FIELDS, "reason", "refusal"]) {
    if ((entry[name] ?? null) !== shown[name]) throw mismatch(name);
  }
  if (!sameInstant(shown.at, entry.at)) throw mismatch("time");
  if (!isStrings(entry.categories) || !sameSet(shown.categories, entry.categories)) throw mismatch("categories");
  const relied = Array.isArray(entry.relied_on) ? entry.relied_on.map((r) => r?.consent_id) : null;
  if (!relied || !sameSet(shown.relied_on.map((r) => r.consent_id), relied)) throw mismatch("relied-on consents");
  if (entry.breakglass !== shown.breakglass) throw mismatch("break-glass flag");
  return shown;
}

/**
 * {status: "verified" | "failed" | "pending", code, reason, shown, anchor} for one history
 * entry (`code` names the check that failed); `verifier` is the pinned log key from
 * note.loadVerifier, whose name is the log's origin; `subject` is the resident whose history
 * this is. A verified result carries `shown`, the entry as the logged event says it, and
 * `anchor`, only what was checked: the anchored checkpoint's size, root and log id.
 */
export async function verifyEntry(entry, verifier, subject, policy = null) {
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
    const shown = checkEntryMatchesEvent(entry, receipt.event, subject);
    const checkpoint = await openCheckpoint(receipt.checkpoint, verifier, verifier.name);
    // With a witness policy, the checkpoint must carry the cosignatures it names.
    const witnessed = policy ? await checkCosignatures(receipt.checkpoint, policy) : null;
    if (witnessed && !witnessed.met) {
      throw new VerifyError("witness-quorum", `cosigned by ${witnessed.cosignedBy.join(", ") || "no witness"}`);
    }
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
    const rootHash = `0x${toHex(checkpoint.rootHash)}`;
    const logId = `0x${toHex(await sha256(utf8(checkpoint.origin)))}`;
    if (
      BigInt(anchor.tree_size) !== checkpoint.treeSize ||
      anchor.root_hash !== rootHash ||
      anchor.log_id !== logId
    ) {
      throw new VerifyError("anchor-mismatch", "the anchor record is not of this checkpoint");
    }
    return {
      status: "verified",
      reason: "",
      shown,
      anchor: { tree_size: String(checkpoint.treeSize), root_hash: rootHash, log_id: logId },
      witnesses: witnessed ? witnessed.cosignedBy : null,
    };
  } catch (error) {
    const code = error instanceof VerifyError ? error.code : "receipt-format";
    return { status: "failed", code, reason: error instanceof Error ? error.message : String(error) };
  }
}
