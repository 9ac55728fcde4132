// RFC 8785 (JCS) canonical JSON, as hashing.canonical writes it: a leaf is the canonical JSON
// of {"kind", "data"}. ECMAScript's own number and string serialization is the one RFC 8785
// specifies, and sorting keys by UTF-16 code units is JavaScript's default string order.

export function canonicalize(value) {
  if (value === null || typeof value === "boolean" || typeof value === "string") {
    return JSON.stringify(value);
  }
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error("JCS has no form for a non-finite number");
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalize).join(",")}]`;
  if (typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalize(value[k])}`).join(",")}}`;
  }
  throw new Error(`JCS has no form for a ${typeof value}`);
}
