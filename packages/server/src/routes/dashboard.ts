import { createHash } from "node:crypto";
import { readFile, realpath, stat } from "node:fs/promises";
import { extname, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { TollgateError } from "@tollgate/core";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { RouteDeps } from "./common.js";

/**
 * The dashboard (packages/dashboard/public): plain ES modules and CSS served as they are, no build
 * step. `/` is its page and `/dashboard/*` its assets; both are public (the page holds no data: it
 * asks for an API key and then calls the authenticated API like any other client).
 */
export const DASHBOARD_DIR = fileURLToPath(new URL("../../../dashboard/public/", import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json; charset=utf-8",
  ".webmanifest": "application/manifest+json",
};

/** Longest asset path we look up; anything longer cannot be one of ours. */
const ASSET_PATH_MAX = 256;
/** The page's own scripts, styles and API calls only: no inline script, nothing from elsewhere. */
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
  /** The file's mtime and size when read: a changed file is read again. */
  version: string;
}

/**
 * Resolves a request path inside `root`, or null when it is not a plain relative path to a file we
 * serve: no `..`, no absolute paths, no backslashes or NUL, a known extension, and (after symlinks)
 * still under root.
 */
export async function resolveAsset(root: string, requested: string): Promise<string | null> {
  if (requested.length === 0 || requested.length > ASSET_PATH_MAX) return null;
  if (/[\\\0]/.test(requested) || requested.startsWith("/")) return null;
  const parts = requested.split("/");
  if (parts.some((p) => p === "" || p === "." || p === ".." || p.startsWith("."))) return null;
  if (!(extname(requested).toLowerCase() in CONTENT_TYPES)) return null;
  const base = resolve(root);
  const full = resolve(base, requested);
  if (!full.startsWith(base + sep)) return null;
  try {
    const real = await realpath(full);
    const realBase = await realpath(base);
    return real.startsWith(realBase + sep) ? real : null;
  } catch {
    return null;
  }
}

export function dashboardRoutes(root: string = DASHBOARD_DIR) {
  // Small files kept in memory (at most the files that exist under root), read again when one
  // changes on disk: one stat per request.
  const cache = new Map<string, Asset>();
  async function load(path: string): Promise<Asset> {
    const st = await stat(path);
    if (!st.isFile()) throw new Error("not a file");
    const version = `${st.mtimeMs}:${st.size}`;
    let asset = cache.get(path);
    if (!asset || asset.version !== version) {
      const body = await readFile(path);
      asset = {
        body,
        type: CONTENT_TYPES[extname(path).toLowerCase()] ?? "application/octet-stream",
        etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`,
        version,
      };
      cache.set(path, asset);
    }
    return asset;
  }

  async function send(request: FastifyRequest, reply: FastifyReply, relative: string) {
    const path = await resolveAsset(root, relative);
    if (!path) throw new TollgateError("NOT_FOUND", `no dashboard file ${relative}`);
    let asset: Asset;
    try {
      asset = await load(path);
    } catch {
      throw new TollgateError("NOT_FOUND", `no dashboard file ${relative}`);
    }
    // Revalidate every time (the file names carry no content hash); an unchanged file is a 304.
    reply.header("cache-control", "no-cache");
    reply.header("etag", asset.etag);
    reply.header("x-content-type-options", "nosniff");
    reply.header("referrer-policy", "no-referrer");
    if (asset.type.startsWith("text/html")) {
      reply.header("content-security-policy", CSP);
      reply.header("x-frame-options", "DENY");
    }
    if (request.headers["if-none-match"] === asset.etag) return reply.code(304).send();
    reply.type(asset.type);
    return reply.send(asset.body);
  }

  return (app: FastifyInstance, _deps: RouteDeps) => {
    const config = { role: "public" as const };
    const schema = { hide: true };
    app.get("/", { config, schema }, (req, reply) => send(req, reply, "index.html"));
    app.get("/dashboard/*", { config, schema }, (req, reply) =>
      send(req, reply, (req.params as { "*": string })["*"]),
    );
  };
}
