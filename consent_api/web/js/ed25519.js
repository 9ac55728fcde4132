// Strict Ed25519, as hashing/ed25519.py: the checks made on a key and a signature before
// WebCrypto verifies them. WebCrypto imports public keys of small order and in non-canonical
// encodings (the browser tests show it), under which OpenSSL verifies a trivial signature for
// any message; so a key (and a signature's R) must encode y < p and a point of large order,
// and a signature's S must be below the group order L. BigInt arithmetic over GF(2^255 - 19); the
// browser tests hold every verdict to Python's.

const P = 2n ** 255n - 19n;
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

function mod(a) {
  const r = a % P;
  return r < 0n ? r + P : r;
}

function pow(base, exp) {
  let result = 1n;
  let b = mod(base);
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % P;
    b = (b * b) % P;
    e >>= 1n;
  }
  return result;
}

const inv = (a) => pow(a, P - 2n);
const D = mod(-121665n * inv(121666n));

// The y of every point of small order (hashing.ed25519.SMALL_ORDER_Y): small order iff y is one.
const SMALL_ORDER_Y = new Set([
  0n,
  1n,
  P - 1n,
  0x05fc536d880238b13933c6d305acdfd5f098eff289f4c345b027b2c28f95e826n,
  0x7a03ac9277fdc74ec6cc392cfa53202a0f67100d760b3cba4fd84d3d706a17c7n,
]);

function littleEndian(bytes) {
  let value = 0n;
  for (let i = bytes.length - 1; i >= 0; i -= 1) value = (value << 8n) | BigInt(bytes[i]);
  return value;
}

// Whether some x has (x, y) on the curve (Euler's criterion on x^2).
function onTheCurve(y) {
  const x2 = mod((y * y - 1n) * inv(mod(D * y * y + 1n)));
  return x2 === 0n || pow(x2, (P - 1n) / 2n) === 1n;
}

/**
 * Why `encoded` (32 bytes) is not a strict point (a key, or with onCurve false a signature's R),
 * or null: y >= p, small order in any encoding, and (onCurve) no point with that y.
 */
export function pointProblem(encoded, { onCurve = true } = {}) {
  if (encoded.length !== 32) return `a point has 32 bytes, not ${encoded.length}`;
  const y = littleEndian(encoded) & ((1n << 255n) - 1n);
  if (y >= P) return "the point's y is not reduced modulo p (a non-canonical encoding)";
  if (SMALL_ORDER_Y.has(y)) return "the point has small order (it signs for anyone)";
  if (onCurve && !onTheCurve(y)) return "the encoding is not a point on the curve";
  return null;
}

/** Why `signature` (64 bytes) is not strictly encoded (R a strict point, S < L), or null. */
export function signatureProblem(signature) {
  if (signature.length !== 64) return `an Ed25519 signature has 64 bytes, not ${signature.length}`;
  const rProblem = pointProblem(signature.slice(0, 32), { onCurve: false });
  if (rProblem !== null) return `its R is refused: ${rProblem}`;
  if (littleEndian(signature.slice(32)) >= L) return "its S is not below the group order (a non-canonical S)";
  return null;
}
