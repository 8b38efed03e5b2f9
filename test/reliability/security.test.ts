import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, expectError, startTestServer, type TestServer } from "../support/server.js";

let t: TestServer;
/** Workspace A (the server's default) and a second workspace B with its own admin key. */
let keyB: string;
let serviceA: string;
const made: string[] = [];

beforeAll(async () => {
  t = await startTestServer({ apiRateLimit: null });
  const boot = await t.server.engine.bootstrap("tenant-b");
  keyB = boot.adminKey!;
  made.push(t.adminKey, keyB);
  const svc = await t.api("POST", "/v1/api-keys", { name: "svc", role: "service" });
  serviceA = svc.body.key;
  made.push(serviceA);
  // Workspace A owns one of everything.
  const a = (m: string, p: string, b?: unknown) => t.api(m, p, b);
  await a("PUT", "/v1/meters/tokens", {
    event_type: "llm.completion",
    aggregation: "sum",
    value: "tokens_in",
  });
  await a("PUT", "/v1/plans/pro", { name: "Pro" });
  await a("PUT", "/v1/customers/acme", { name: "Acme", plan: "pro" });
  await a("PUT", "/v1/limits/cap", { customer: "acme", meter: "tokens", amount: 100, period: "month" });
  await a("PUT", "/v1/rate-limits/rpm", {
    customer: "acme",
    scope: "customer",
    limit: 10,
    window_seconds: 60,
  });
  await a("PUT", "/v1/concurrency-limits/par", { customer: "acme", scope: "customer", max: 2 });
  await a("PUT", "/v1/balance-rules/per-token", { meter: "tokens", credits_per_unit: 1 });
  await a("POST", "/v1/customers/acme/balance/credits", { amount: 1000, idempotency_key: "c1" });
  const ukey = await a("POST", "/v1/customers/acme/keys", { name: "end user" });
  made.push(ukey.body.key);
  await a("POST", "/v1/events", {
    events: [{ id: "e1", type: "llm.completion", customer: "acme", values: { tokens_in: 5 } }],
  });
});
afterAll(() => t.close());

/** Every operation the API documents (from its own OpenAPI), with `{param}` placeholders. */
async function operations(): Promise<{ method: string; path: string }[]> {
  const spec = (await t.api("GET", "/openapi.json")).body as {
    paths: Record<string, Record<string, unknown>>;
  };
  const ops: { method: string; path: string }[] = [];
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const method of Object.keys(item)) {
      if (["get", "put", "post", "delete", "patch"].includes(method))
        ops.push({ method: method.toUpperCase(), path });
    }
  }
  return ops;
}

/** Fills path parameters with workspace A's ids. */
function concrete(path: string): string {
  return path
    .replace("{model}", "gpt-4o")
    .replace("{key_id}", "key_doesnotexist")
    .replace(/\{[a-z_]+\}/g, (p) =>
      p === "{id}"
        ? path.startsWith("/v1/customers")
          ? "acme"
          : path.startsWith("/v1/plans")
            ? "pro"
            : path.startsWith("/v1/meters")
              ? "tokens"
              : path.startsWith("/v1/limits")
                ? "cap"
                : path.startsWith("/v1/rate-limits")
                  ? "rpm"
                  : path.startsWith("/v1/concurrency-limits")
                    ? "par"
                    : path.startsWith("/v1/balance-rules")
                      ? "per-token"
                      : "x"
        : "x",
    );
}

/** What workspace A has, read with A's key. */
async function snapshotA() {
  const paths = [
    "/v1/customers/acme",
    "/v1/plans/pro",
    "/v1/meters/tokens",
    "/v1/limits/cap?customer=acme",
    "/v1/rate-limits/rpm?customer=acme",
    "/v1/customers/acme/balance",
    "/v1/balance-rules/per-token",
    "/v1/meters/tokens/query",
    "/v1/api-keys",
    "/v1/customers/acme/keys",
  ];
  const out: Record<string, unknown> = {};
  for (const p of paths) out[p] = (await t.api("GET", p)).body;
  return out;
}

describe("isolation between workspaces", () => {
  it("every route tried with another workspace's ids answers 404 (or acts on the caller's own workspace) and reveals nothing", async () => {
    const before = await snapshotA();
    // Reads of A's ids by B are 404, with the API.md shape.
    for (const p of [
      "/v1/customers/acme",
      "/v1/plans/pro",
      "/v1/customers/acme/balance",
      "/v1/limits/cap?customer=acme",
    ]) {
      const res = await call(t.url, "GET", p, undefined, { key: keyB });
      expectError(res, 404, "NOT_FOUND");
    }
    const leaks: string[] = [];
    for (const op of await operations()) {
      if (!op.path.startsWith("/v1/")) continue;
      const path = concrete(op.path);
      // PUT upserts in the caller's own workspace: B's "acme" is B's, not A's (checked below).
      const body = op.method === "GET" || op.method === "DELETE" ? undefined : {};
      const res = await call(t.url, op.method, path, body, { key: keyB });
      expect(res.status, `${op.method} ${path}`).toBeLessThan(500);
      if (res.status >= 200 && res.status < 300 && op.method === "GET") {
        // A list or a read in B: must not show A's things.
        const text = res.text;
        for (const secret of ["Acme", "per-token", '"cap"', '"rpm"']) {
          if (text.includes(secret)) leaks.push(`${op.method} ${path}: ${secret}`);
        }
      }
      if (res.status === 403) leaks.push(`${op.method} ${path}: 403 reveals existence`);
    }
    expect(leaks).toEqual([]);
    expect(await snapshotA()).toEqual(before);
  });
});

describe("roles", () => {
  /** Writes a service key may make: recording and enforcing usage, never definitions or keys. */
  const SERVICE_WRITES = new Set([
    "POST /v1/events",
    "POST /v1/check",
    "POST /v1/reservations/{id}/commit",
    "POST /v1/reservations/{id}/release",
    "POST /v1/customers/{id}/balance/debits",
  ]);
  it("a service key cannot manage keys, plans, limits, meters, customers, prices, balances or webhooks", async () => {
    const allowedButNotListed: string[] = [];
    let refused = 0;
    for (const op of await operations()) {
      if (!op.path.startsWith("/v1/") || op.method === "GET") continue;
      const id = `${op.method} ${op.path}`;
      const res = await call(t.url, op.method, concrete(op.path), op.method === "DELETE" ? undefined : {}, {
        key: serviceA,
      });
      if (SERVICE_WRITES.has(id)) {
        expect(res.status, id).not.toBe(403);
        continue;
      }
      if (res.status !== 403) allowedButNotListed.push(`${id} → ${res.status}`);
      else {
        expectError(res, 403, "FORBIDDEN");
        refused++;
      }
    }
    expect(allowedButNotListed).toEqual([]);
    expect(refused).toBeGreaterThan(15);
  });

  it("end-user keys are refused on /v1", async () => {
    const ukey = made[3]!;
    expectError(await call(t.url, "GET", "/v1/customers/acme", undefined, { key: ukey }), 403, "FORBIDDEN");
  });
});

describe("keys at rest", () => {
  it("the database holds keys only as hashes: no plaintext key is in the file", async () => {
    await t.server.store.close().catch(() => {});
    const dir = t.dataDir;
    let bytes = "";
    for (const f of ["tollgate.db", "tollgate.db-wal"]) {
      const p = join(dir, f);
      if (existsSync(p)) bytes += readFileSync(p).toString("latin1");
    }
    expect(bytes.length).toBeGreaterThan(0);
    for (const key of made) {
      expect(key.length).toBeGreaterThan(20);
      expect(bytes.includes(key), "plaintext key in the database").toBe(false);
      // Not even its secret part after the prefix.
      expect(bytes.includes(key.slice(12)), "key material in the database").toBe(false);
    }
    // The hash is what is stored.
    const { createHash } = await import("node:crypto");
    const hash = createHash("sha256").update(made[2]!).digest("hex");
    expect(bytes.includes(hash)).toBe(true);
  });
});
