import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Clock } from "@tollgate/core";
import type { ApiRateLimitOptions, OverloadOptions } from "@tollgate/server";
import { type RunningServer, startServer } from "../../packages/cli/src/runtime.js";
import { dropSchema } from "../store/pg.js";

export interface TestServer {
  url: string;
  adminKey: string;
  dataDir: string;
  server: RunningServer;
  /** Calls the API over real HTTP; parses JSON answers. */
  api(
    method: string,
    path: string,
    body?: unknown,
    opts?: { key?: string | null; headers?: Record<string, string>; raw?: string },
  ): Promise<ApiResponse>;
  close(): Promise<void>;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: test bodies are checked field by field
  body: any;
  text: string;
}

/**
 * A real server on a free loopback port over a fresh SQLite file in a temp folder (or over `dataDir`,
 * which is then kept). `apiRateLimit` sets the API's own per-key protection (null turns it off; left
 * out, the server's default).
 */
export async function startTestServer(
  options: {
    clock?: Clock;
    configPath?: string;
    dataDir?: string;
    apiRateLimit?: ApiRateLimitOptions | null;
    overload?: OverloadOptions;
  } = {},
): Promise<TestServer> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "tollgate-test-"));
  const adminKey = `tg_test_${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
  // STORE=postgres runs the same suites on PostgreSQL: one schema per data folder (a restart with the
  // same dataDir finds its data again), dropped with the folder.
  const postgres =
    process.env.STORE === "postgres" || process.env.STORE === "postgres+redis"
      ? {
          url: process.env.TOLLGATE_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test",
          schema: `tg_test_${createHash("sha256").update(dataDir).digest("hex").slice(0, 16)}`,
        }
      : undefined;
  // STORE=postgres+redis also keeps the hot limit state in Redis (keys prefixed by the schema name).
  const redis =
    postgres && process.env.STORE === "postgres+redis"
      ? { url: process.env.TOLLGATE_TEST_REDIS_URL ?? "redis://127.0.0.1:6379", prefix: postgres.schema }
      : undefined;
  const server = await startServer({
    dataDir,
    ...(postgres ? { postgres } : {}),
    ...(redis ? { redis } : {}),
    port: 0,
    adminKey,
    clock: options.clock,
    configPath: options.configPath,
    ...(options.apiRateLimit !== undefined ? { apiRateLimit: options.apiRateLimit } : {}),
    ...(options.overload ? { overload: options.overload } : {}),
  });
  const url = server.url;
  return {
    url,
    adminKey,
    dataDir,
    server,
    api: (method, path, body, opts = {}) => call(url, method, path, body, { key: adminKey, ...opts }),
    async close() {
      await server.close();
      if (!options.dataDir) {
        rmSync(dataDir, { recursive: true, force: true });
        if (postgres) await dropSchema(postgres.schema, postgres.url);
      }
    },
  };
}

export async function call(
  baseUrl: string,
  method: string,
  path: string,
  body?: unknown,
  opts: { key?: string | null; headers?: Record<string, string>; raw?: string } = {},
): Promise<ApiResponse> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.key) headers.authorization = `Bearer ${opts.key}`;
  let payload: string | undefined = opts.raw;
  if (body !== undefined && payload === undefined) payload = JSON.stringify(body);
  if (payload !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === "content-type")) {
    headers["content-type"] = "application/json";
  }
  const res = await fetch(baseUrl + path, { method, headers, body: payload });
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

/** Asserts the API.md error shape and returns the error object. */
export function expectError(res: ApiResponse, status: number, code: string) {
  if (res.status !== status || res.body?.error?.code !== code || res.body?.error?.status !== status) {
    throw new Error(`expected ${status} ${code}, got ${res.status} ${res.text}`);
  }
  if (typeof res.body.error.message !== "string" || res.body.error.message.length === 0) {
    throw new Error(`error without a message: ${res.text}`);
  }
  return res.body.error as {
    code: string;
    message: string;
    status: number;
    details?: Record<string, unknown>;
  };
}
