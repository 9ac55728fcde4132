// The page's verification code (merkle.js, note.js, receipt.js, jcs.js) run in chromium on
// vectors the Python side built with the `hashing` package, including corrupted variants: the
// browser must accept exactly what Python accepts; history entries showing what was not logged,
// or about another resident, are not verified; strict Ed25519 (ed25519.js) refuses exactly the
// keys and signatures hashing.ed25519 refuses, and small-order log keys do not load. Then api.js's paging on Link headers: followed on
// the page's origin only, with no request (and no token) sent anywhere else. The modules are
// served from the source tree on a made-up origin, so no server is needed.

import { existsSync, readFileSync } from "node:fs";
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
  // Anything not on the page's origin is recorded and never reaches the network.
  const elsewhere = [];
  await page.route("**/*", (route) => {
    const request = route.request();
    elsewhere.push(`${request.url()} (authorization: ${request.headers().authorization || "none"})`);
    return route.abort();
  });
  let link = null; // the Link header of the first page of /v1/items, per case
  await page.route(`${ORIGIN}/**`, (route) => {
    const url = new URL(route.request().url());
    const path = url.pathname;
    if (path === "/v1/items") {
      const first = !url.searchParams.has("after");
      const headers = first && link ? { link: link.replace("{origin}", ORIGIN) } : {};
      return route.fulfill({ contentType: "application/json", headers, body: JSON.stringify([first ? 0 : 1]) });
    }
    if (path === "/") return route.fulfill({ contentType: "text/html", body: "<!doctype html><title>vectors</title>" });
    const file = join(WEB, path.replace(/^\/static\//, ""));
    if (!file.startsWith(WEB) || !existsSync(file)) return route.fulfill({ status: 404, body: "" });
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
    const { verifyEntry } = await import("/static/js/receipt.js");
    const logKey = await loadVerifier(v.receipts.vkey);
    for (const c of v.receipts.cases) {
      const result = await verifyEntry(c.entry, logKey, v.receipts.subject);
      const got = result.status === "verified" ? "verified" : result.code;
      if (got !== c.expected) out.push(`receipt ${c.name}: got ${got} (${result.reason}), expected ${c.expected}`);
      if (result.status === "verified") {
        const { shown, anchor } = result;
        const event = c.entry.receipt.event;
        if (!shown || shown.requester !== event.data.requester || shown.decision !== c.entry.decision || shown.refusal !== (event.data.refusal ?? null)) {
          out.push(`receipt ${c.name}: shown ${JSON.stringify(shown)} is not the logged event`);
        }
        if (Object.keys(anchor || {}).sort().join() !== "log_id,root_hash,tree_size") {
          out.push(`receipt ${c.name}: the mark carries unchecked anchor data ${Object.keys(anchor)}`);
        }
      }
    }
    const { checkCosignatures, parsePolicy } = await import("/static/js/cosignature.js");
    for (const c of v.cosignatures || []) {
      let got;
      try {
        const result = await checkCosignatures(c.note, await parsePolicy(c.policy));
        got = `${result.met ? "met" : "not met"}:${result.cosignedBy.join(",")}`;
      } catch (error) {
        got = `fail:${error.code || error.message}`;
      }
      if (got !== c.expected) out.push(`cosignature ${c.name}: got ${got}, Python says ${c.expected}`);
      }
    const { pointProblem, signatureProblem } = await import("/static/js/ed25519.js");
    const fromHex = (hex) => Uint8Array.from(hex.match(/../g) || [], (h) => parseInt(h, 16));
    for (const c of v.strict.points) {
      const problem = pointProblem(fromHex(c.hex));
      if ((problem === null) !== c.valid) out.push(`point ${c.name}: got ${problem}, Python says ${c.valid}`);
    }
    for (const c of v.strict.signatures) {
      const problem = signatureProblem(fromHex(c.hex));
      if ((problem === null) !== c.valid) out.push(`signature ${c.name}: got ${problem}, Python says ${c.valid}`);
    }
    for (const c of v.strict.weak_vkeys) {
      const got = await outcome(async () => loadVerifier(c.vkey));
      if (got !== "fail:key-format") out.push(`weak key ${c.name}: got ${got}, Python refuses it`);
    }
    for (const c of v.canonical) {
      const got = canonicalize(JSON.parse(c.json));
      if (toHex(utf8(got)) !== c.canonical_hex) out.push(`canonical ${c.name}: got ${got}`);
    }
    return out;
  }, vectors);
  for (const c of vectors.links) {
    link = c.header;
    elsewhere.length = 0;
    const got = await page.evaluate(async () => {
      const { Api } = await import("/static/js/api.js");
      try {
        return JSON.stringify(await new Api(() => "secret-token").getAll("/v1/items"));
      } catch (error) {
        return `fail:${error.message}`;
      }
    });
    const followed = got === "[0,1]";
    if (followed !== c.follows) failures.push(`link ${c.name}: got ${got}, expected ${c.follows ? "followed" : "refused"}`);
    if (!c.follows && !got.startsWith("fail:")) failures.push(`link ${c.name}: not refused (${got})`);
    if (elsewhere.length) failures.push(`link ${c.name}: requests off the page's origin: ${elsewhere.join(", ")}`);
  }
  const total =
    vectors.inclusion.length + vectors.notes.length + vectors.receipts.cases.length + vectors.canonical.length + vectors.links.length;
  console.log(`${total} vectors, ${failures.length} failures`);
  for (const failure of failures) console.error(failure);
  process.exitCode = failures.length ? 1 : 0;
} finally {
  await browser.close();
}
