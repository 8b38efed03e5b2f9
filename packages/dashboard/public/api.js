// @ts-check
/**
 * The dashboard's only way to data: the public HTTP API, with the workspace key as a bearer token.
 * The key lives in sessionStorage (this tab, until it closes or the user signs out).
 */

const KEY_ITEM = "tollgate.apiKey";
/** Tries of one call when the server answers 503 or 429. */
const RETRIES_MAX = 3;
/** Longest wait between them (seconds), whatever Retry-After says. */
const RETRY_WAIT_MAX_S = 5;

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export class Api {
  /** @param {string} key */
  constructor(key) {
    this.key = key;
    /** API calls go to the server that served the page (it may sit under a path prefix). */
    this.base = new URL(".", window.location.href).href.replace(/\/$/, "");
  }

  /** @returns {Api | null} */
  static fromSession() {
    const key = sessionStorage.getItem(KEY_ITEM);
    return key ? new Api(key) : null;
  }

  save() {
    sessionStorage.setItem(KEY_ITEM, this.key);
  }

  static forget() {
    sessionStorage.removeItem(KEY_ITEM);
  }

  /**
   * @param {string} method
   * @param {string} path
   * @returns {Promise<Response>}
   */
  async request(method, path) {
    // A server shedding load (503) or a key over its API rate (429) says when to come back: wait
    // that long (at most RETRY_WAIT_MAX_S) and try again, a few times, before showing an error.
    for (let attempt = 1; ; attempt++) {
      let res;
      try {
        res = await fetch(this.base + path, {
          method,
          headers: { authorization: `Bearer ${this.key}`, accept: "application/json, text/csv" },
        });
      } catch (err) {
        throw new ApiError(0, "NETWORK", `cannot reach the server (${String(err)})`);
      }
      if ((res.status === 503 || res.status === 429) && attempt < RETRIES_MAX) {
        const after = Math.min(RETRY_WAIT_MAX_S, Math.max(1, Number(res.headers.get("retry-after")) || 1));
        await new Promise((resolve) => setTimeout(resolve, after * 1000));
        continue;
      }
      if (!res.ok) {
        let code = "HTTP_" + res.status;
        let message = res.statusText || "request failed";
        try {
          const body = await res.json();
          code = body?.error?.code ?? code;
          message = body?.error?.message ?? message;
        } catch {
          // not the API's JSON error shape: keep the status line
        }
        throw new ApiError(res.status, code, message);
      }
      return res;
    }
  }

  /**
   * GET a JSON answer.
   * @param {string} path
   * @returns {Promise<any>}
   */
  async get(path) {
    return (await this.request("GET", path)).json();
  }

  /**
   * Every page of a list (`{data, next_cursor}`), up to `max` items.
   * @param {string} path
   * @param {number} [max]
   * @returns {Promise<any[]>}
   */
  async all(path, max = 2000) {
    const out = [];
    let cursor;
    do {
      const sep = path.includes("?") ? "&" : "?";
      const page = await this.get(cursor ? `${path}${sep}cursor=${encodeURIComponent(cursor)}` : path);
      out.push(...page.data);
      cursor = page.next_cursor;
    } while (cursor && out.length < max);
    return out;
  }

  /**
   * GET the body as a Blob (exports).
   * @param {string} path
   * @returns {Promise<Blob>}
   */
  async blob(path) {
    return (await this.request("GET", path)).blob();
  }

  /**
   * POST without a body.
   * @param {string} path
   * @returns {Promise<any>}
   */
  async post(path) {
    const res = await this.request("POST", path);
    return res.status === 204 ? null : res.json();
  }
}

/**
 * Runs `fn` over `items` with at most `width` calls in flight (N+1 lookups stay polite).
 * @template T, U
 * @param {T[]} items
 * @param {number} width
 * @param {(item: T) => Promise<U>} fn
 * @returns {Promise<U[]>}
 */
export async function mapLimited(items, width, fn) {
  const out = /** @type {U[]} */ (new Array(items.length));
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(/** @type {T} */ (items[i]));
    }
  }
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return out;
}
