// Strict Ed25519, as hashing/ed25519.py: the checks made on a key and a signature before
// WebCrypto verifies them. WebCrypto accepts a public key of small order, under which a trivial
// signature verifies for any message, and keys and R values in non-canonical encodings; so a
// key (and a signature's R) must be the canonical encoding of a point of large order, and a
// signature's S must be below the group order L. BigInt arithmetic over GF(2^255 - 19).

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
const SQRT_M1 = pow(2n, (P - 1n) / 4n);

function littleEndian(bytes) {
  let value = 0n;
  for (let i = bytes.length - 1; i >= 0; i -= 1) value = (value << 8n) | BigInt(bytes[i]);
  return value;
}

function recoverX(y, sign) {
  const u = mod(y * y - 1n);
  const v = mod(D * y * y + 1n);
  const x2 = mod(u * inv(v));
  if (x2 === 0n) return 0n;
  let x = pow(x2, (P + 3n) / 8n);
  if (mod(x * x - x2) !== 0n) x = mod(x * SQRT_M1);
  if (mod(x * x - x2) !== 0n) return null;
  if ((x & 1n) !== BigInt(sign)) x = P - x;
  return x;
}

function add([x1, y1], [x2, y2]) {
  const t = mod(D * x1 * x2 * y1 * y2);
  return [mod((x1 * y2 + x2 * y1) * inv(1n + t)), mod((y1 * y2 + x1 * x2) * inv(mod(1n - t)))];
}

/** Why `encoded` (32 bytes) is not a strict point (a key or a signature's R), or null. */
export function pointProblem(encoded) {
  if (encoded.length !== 32) return `a point has 32 bytes, not ${encoded.length}`;
  const value = littleEndian(encoded);
  const sign = Number(value >> 255n);
  const y = value & ((1n << 255n) - 1n);
  if (y >= P) return "the point's y is not reduced modulo p (a non-canonical encoding)";
  const x = recoverX(y, sign);
  if (x === null) return "the encoding is not a point on the curve";
  if (x === 0n && sign) return "the point's x is 0 with the sign bit set (a non-canonical encoding)";
  let point = [x, y];
  for (let i = 0; i < 3; i += 1) point = add(point, point);
  if (point[0] === 0n && point[1] === 1n) return "the point has small order (it signs for anyone)";
  return null;
}

/** Why `signature` (64 bytes) is not strictly encoded (R a strict point, S < L), or null. */
export function signatureProblem(signature) {
  if (signature.length !== 64) return `an Ed25519 signature has 64 bytes, not ${signature.length}`;
  const rProblem = pointProblem(signature.slice(0, 32));
  if (rProblem !== null) return `its R is refused: ${rProblem}`;
  if (littleEndian(signature.slice(32)) >= L) return "its S is not below the group order (a non-canonical S)";
  return null;
}
