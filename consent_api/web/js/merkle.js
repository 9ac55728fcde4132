// RFC 9162 Merkle tree hashing and inclusion proofs: a port of hashing/verify.py (itself a port
// of transparency-dev/merkle). rootFromInclusionProof computes; verifyInclusion throws a
// VerifyError naming what did not match. Index arithmetic is BigInt: tree sizes are uint64.

import { concat, equal, sha256, toHex } from "./bytes.js";

export const HASH_SIZE = 32;

/** A check that did not hold: `code` says which (a stable key), the message the details. */
export class VerifyError extends Error {
  constructor(code, detail = "") {
    super(detail || code);
    this.code = code;
  }
}

export function leafHash(data) {
  return sha256(concat(Uint8Array.of(0), data));
}

export function nodeHash(left, right) {
  return sha256(concat(Uint8Array.of(1), left, right));
}

function bitLength(n) {
  return n === 0n ? 0 : n.toString(2).length;
}

function bitCount(n) {
  return [...n.toString(2)].filter((c) => c === "1").length;
}

export async function rootFromInclusionProof(leafIndex, treeSize, leaf, proof) {
  const index = BigInt(leafIndex);
  const size = BigInt(treeSize);
  if (index < 0n || index >= size) {
    throw new VerifyError("index-out-of-range", `leaf_index ${index} is not in [0, ${size})`);
  }
  if (leaf.length !== HASH_SIZE) throw new VerifyError("proof-shape", "the leaf hash is not 32 bytes");
  proof.forEach((hash, i) => {
    if (hash.length !== HASH_SIZE) throw new VerifyError("proof-shape", `proof[${i}] is not 32 bytes`);
  });
  const inner = bitLength(index ^ (size - 1n));
  const border = bitCount(index >> BigInt(inner));
  if (proof.length !== inner + border) {
    throw new VerifyError("proof-shape", `wrong proof size ${proof.length}, want ${inner + border}`);
  }
  let seed = leaf;
  for (let level = 0; level < inner; level += 1) {
    const right = (index >> BigInt(level)) & 1n;
    seed = right ? await nodeHash(proof[level], seed) : await nodeHash(seed, proof[level]);
  }
  for (const sibling of proof.slice(inner)) seed = await nodeHash(sibling, seed);
  return seed;
}

export async function verifyInclusion(leaf, leafIndex, treeSize, proof, rootHash) {
  const computed = await rootFromInclusionProof(leafIndex, treeSize, leaf, proof);
  if (!equal(computed, rootHash)) {
    throw new VerifyError("root-mismatch", `expected ${toHex(rootHash)}, computed ${toHex(computed)}`);
  }
}
