// The page's verification code (merkle.js, note.js, jcs.js) run in chromium on vectors the
// Python side built with the `hashing` package, including corrupted variants: the browser must
// accept exactly what Python accepts. The modules are served from the source tree on a
// made-up origin, so no server is needed.

import { readFileSync } from "node:fs";
import { extname, join, resolve } from "node:path";
import { chromium } from "playwright-core";

const vectors = JSON.parse(readFileSync(process.argv[2], "utf8"));
const WEB = resolve(new URL("../../consent_api/web", import.meta.url).pathname);
const ORIGIN = "http://localhost:9"; // a secure context: WebCrypto needs one
const TYPES = { ".js": "text/javascript", ".html": "text/html" };

const browser = await chromium.launch({
  executablePath: vectors.chromium,
  headless: true,
  args: ["--no-sandbox", "--disable-background-networking"],
});
try {
  const page = await browser.newPage();
  await page.route(`${ORIGIN}/**`, (route) => {
    const path = new URL(route.request().url()).pathname;
    if (path === "/") return route.fulfill({ contentType: "text/html", body: "<!doctype html><title>vectors</title>" });
    const file = join(WEB, path.replace(/^\/static\//, ""));
    if (!file.startsWith(WEB)) return route.abort();
    return route.fulfill({ contentType: TYPES[extname(file)] || "text/plain", body: readFileSync(file) });
  });
  await page.goto(`${ORIGIN}/`);
  const failures = await page.evaluate(async (v) => {
    const { fromBase64Strict, toHex, utf8 } = await import("/static/js/bytes.js");
    const { leafHash, verifyInclusion } = await import("/static/js/merkle.js");
    const { loadVerifier, openCheckpoint } = await import("/static/js/note.js");
    const { canonicalize } = await import("/static/js/jcs.js");
    const out = [];
    const outcome = async (fn) => {
      try {
        await fn();
        return "ok";
      } catch (error) {
        return `fail:${error.code || error.message}`;
      }
    };
    for (const c of v.inclusion) {
      const got = await outcome(async () =>
        verifyInclusion(
          await leafHash(fromBase64Strict(c.leaf_data)),
          c.leaf_index,
          c.tree_size,
          c.proof.map(fromBase64Strict),
          fromBase64Strict(c.root_hash),
        ),
      );
      if ((got === "ok") !== c.valid) out.push(`inclusion ${c.name}: got ${got}, Python says ${c.valid}`);
    }
    for (const c of v.notes) {
      let verifier;
      const loaded = await outcome(async () => {
        verifier = await loadVerifier(c.vkey);
      });
      if (loaded !== "ok") {
        out.push(`note ${c.name}: key not loaded (${loaded})`);
        continue;
      }
      if (toHex(verifier.keyHash) !== c.key_hash) out.push(`note ${c.name}: key hash ${toHex(verifier.keyHash)}`);
      let opened;
      const got = await outcome(async () => {
        opened = await openCheckpoint(c.note, verifier);
      });
      if ((got === "ok") !== c.valid) out.push(`note ${c.name}: got ${got}, Python says ${c.valid}`);
      if (got === "ok" && (opened.origin !== c.origin || String(opened.treeSize) !== c.tree_size || toHex(opened.rootHash) !== c.root_hex)) {
        out.push(`note ${c.name}: parsed ${opened.origin} ${opened.treeSize}`);
      }
    }
    for (const c of v.canonical) {
      const got = canonicalize(JSON.parse(c.json));
      if (toHex(utf8(got)) !== c.canonical_hex) out.push(`canonical ${c.name}: got ${got}`);
    }
    return out;
  }, vectors);
  const total = vectors.inclusion.length + vectors.notes.length + vectors.canonical.length;
  console.log(`${total} vectors, ${failures.length} failures`);
  for (const failure of failures) console.error(failure);
  process.exitCode = failures.length ? 1 : 0;
} finally {
  await browser.close();
}
