// The JSON API with a bearer token. Failures become ApiProblem, carrying the RFC 9457 problem
// document the service answered with; list reads follow `Link: <...>; rel="next"` pages.

export class ApiProblem extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

function nextLink(header) {
  for (const part of (header || "").split(",")) {
    const match = part.match(/<([^>]*)>\s*;\s*rel="?next"?/);
    if (match) return match[1];
  }
  return null;
}

/**
 * The next page's absolute URL, on this page's origin only: the bearer token goes nowhere else,
 * whatever a Link header says. The whole URL is kept, never a path cut out of it: the path of
 * `https://x//attacker.example/p` is `//attacker.example/p`, which fetch reads as another host.
 */
export function sameOriginNext(header) {
  const next = nextLink(header);
  if (next === null) return null;
  let url;
  try {
    url = new URL(next, location.href);
  } catch {
    throw new ApiProblem(0, { title: "bad-link", detail: "the next page's link is not a URL" });
  }
  if (url.origin !== location.origin) {
    throw new ApiProblem(0, { title: "bad-link", detail: "the next page is on another origin" });
  }
  return url.href;
}

async function problemOf(response) {
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) {
    try {
      return await response.json();
    } catch {
      /* fall through */
    }
  }
  return { title: response.statusText, status: response.status, detail: "" };
}

export class Api {
  /** `token` is a function returning a bearer token (a promise is fine) or null. */
  constructor(token) {
    this.token = token;
  }

  async fetch(method, path, body) {
    const headers = { Accept: "application/json, application/problem+json, text/plain" };
    const token = this.token ? await this.token() : null;
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
      });
    } catch {
      throw new ApiProblem(0, { title: "network", detail: "" });
    }
    if (!response.ok) throw new ApiProblem(response.status, await problemOf(response));
    return response;
  }

  async json(method, path, body) {
    return (await this.fetch(method, path, body)).json();
  }

  get(path) {
    return this.json("GET", path);
  }

  async text(path) {
    return (await this.fetch("GET", path)).text();
  }

  /** Every item of a list endpoint, following its Link rel="next" pages if it pages. */
  async getAll(path) {
    const items = [];
    let url = path;
    for (let page = 0; url && page < 1000; page += 1) {
      const response = await this.fetch("GET", url);
      items.push(...(await response.json()));
      url = sameOriginNext(response.headers.get("link"));
    }
    return items;
  }
}
