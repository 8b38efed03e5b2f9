// Several `tollgate serve` processes on different ports sharing one PostgreSQL schema and one Redis
// (a private redis-server on a free port, started and stopped by this file, so the shared 6379 is
// not disturbed). The scale-out checks: exact admission across processes, Redis loss and
// recovery from PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanEnv, cleanup, freePort, type Proc, type ServeProc, serve, start, stop } from "../e2e/proc.js";
import { dropSchema, freshSchema, PG_URL } from "../store/pg.js";
import { call } from "../support/server.js";

const ADMIN_KEY = "tg_scaleout_admin_key_0123456789";
const schema = freshSchema("tg_scaleout");
let redisPort = 0;
let redis: Proc | null = null;
const servers: ServeProc[] = [];

async function startRedis(): Promise<void> {
  redis = start("redis-server", [
    "--port",
    String(redisPort),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no",
  ]);
  for (let i = 0; i < 100; i++) {
    if (/Ready to accept connections/.test(redis.stdout())) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server did not start: ${redis.stdout()} ${redis.stderr()}`);
}

async function stopRedis(): Promise<void> {
  if (!redis) return;
  redis.signal("SIGKILL");
  await redis.exited;
  redis = null;
}

const serveArgs = () => [
  "--postgres",
  PG_URL,
  "--postgres-schema",
  schema,
  "--redis",
  `redis://127.0.0.1:${redisPort}`,
  "--api-rate-limit",
  "0",
  "--data",
  "/nonexistent-unused",
];
const env = () => cleanEnv({ TOLLGATE_ADMIN_KEY: ADMIN_KEY });
const api = (i: number, method: string, path: string, body?: unknown) =>
  call(servers[i % servers.length]!.url, method, path, body, { key: ADMIN_KEY });

beforeAll(async () => {
  redisPort = await freePort();
  await startRedis();
  // The first process migrates the schema and creates the workspace; the other two start together.
  servers.push(await serve(serveArgs(), { env: env(), timeoutMs: 40_000 }));
  servers.push(
    ...(await Promise.all([1, 2].map(() => serve(serveArgs(), { env: env(), timeoutMs: 40_000 })))),
  );
  const meter = await api(0, "PUT", "/v1/meters/requests", {
    event_type: "llm.completion",
    aggregation: "count",
  });
  expect(meter.status).toBe(201);
  for (const c of ["acme", "beta", "gamma"])
    expect((await api(0, "PUT", `/v1/customers/${c}`, {})).status).toBe(201);
}, 120_000);

afterAll(async () => {
  await Promise.all(servers.map((s) => stop(s)));
  await stopRedis();
  await cleanup();
  await dropSchema(schema);
}, 60_000);

describe("several processes, one PostgreSQL and one Redis", () => {
  it("1,000 concurrent check+reserve calls over 3 processes against a hard quota with room for 100 admit exactly 100", async () => {
    const put = await api(0, "PUT", "/v1/limits/cap", {
      customer: "acme",
      meter: "requests",
      amount: 100,
      period: "month",
    });
    expect(put.status).toBe(201);
    // Every process has seen the limit (definitions are read from the shared store).
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        api(i, "POST", "/v1/check", {
          event: { type: "llm.completion", customer: "acme" },
          reserve: { ttl_seconds: 300 },
        }),
      ),
    );
    const statuses = new Set(results.map((r) => r.status));
    expect([...statuses], results.find((r) => r.status !== 200)?.text).toEqual([200]);
    const admitted = results.filter((r) => r.body.allowed);
    expect(admitted.length).toBe(100);
    for (const r of results.filter((r) => !r.body.allowed)) expect(r.body.code).toBe("LIMIT_EXCEEDED");
    // Every process reports the same state: nothing used yet, 100 held.
    for (let i = 0; i < 3; i++) {
      const state = await api(i, "GET", "/v1/customers/acme/limits");
      const cap = state.body.data.find((l: { id: string }) => l.id === "cap");
      expect(cap).toMatchObject({ used: 0, reserved: 100, remaining: 0 });
    }
    // Commits land on any process; usage then equals what was committed, and nothing is held.
    const commits = await Promise.all(
      admitted.map((r, i) => api(i + 1, "POST", `/v1/reservations/${r.body.reservation.id}/commit`, {})),
    );
    expect(commits.every((c) => c.status === 200)).toBe(true);
    const after = await api(2, "GET", "/v1/customers/acme/limits");
    expect(after.body.data.find((l: { id: string }) => l.id === "cap")).toMatchObject({
      used: 100,
      reserved: 0,
    });
    const more = await api(1, "POST", "/v1/check", { event: { type: "llm.completion", customer: "acme" } });
    expect(more.body.allowed).toBe(false);
  }, 120_000);

  it("1,000 concurrent reserves over 3 processes against a balance with room for 150 admit exactly 150; debits on every process never overdraw", async () => {
    // Its own event type and meter, so that the debit rule charges nothing the other tests send.
    expect(
      (await api(0, "PUT", "/v1/meters/paid_calls", { event_type: "paid.call", aggregation: "count" }))
        .status,
    ).toBe(201);
    expect(
      (await api(1, "PUT", "/v1/balance-rules/per-call", { meter: "paid_calls", credits_per_unit: 1 }))
        .status,
    ).toBe(201);
    expect((await api(2, "PUT", "/v1/customers/wallet", {})).status).toBe(201);
    const credit = await api(0, "POST", "/v1/customers/wallet/balance/credits", {
      amount: 150,
      idempotency_key: "topup-1",
    });
    expect(credit.status, credit.text).toBe(201);
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        api(i, "POST", "/v1/check", {
          event: { type: "paid.call", customer: "wallet" },
          reserve: { ttl_seconds: 600 },
        }),
      ),
    );
    expect([...new Set(results.map((r) => r.status))], results.find((r) => r.status !== 200)?.text).toEqual([
      200,
    ]);
    const admitted = results.filter((r) => r.body.allowed);
    expect(admitted.length).toBe(150);
    for (const r of results.filter((r) => !r.body.allowed)) expect(r.body.code).toBe("INSUFFICIENT_BALANCE");
    const balance = async (i: number) => (await api(i, "GET", "/v1/customers/wallet/balance")).body;
    for (let i = 0; i < 3; i++)
      expect(await balance(i)).toMatchObject({ balance: 150, held: 150, available: 0 });

    // 50 commits and 50 releases, on any process: 50 credits spent, 50 returned, 50 still held.
    const finish = await Promise.all(
      admitted
        .slice(0, 100)
        .map((r, i) =>
          api(
            i,
            "POST",
            `/v1/reservations/${r.body.reservation.id}/${i % 2 === 0 ? "commit" : "release"}`,
            {},
          ),
        ),
    );
    expect(finish.every((f) => f.status === 200)).toBe(true);
    for (let i = 0; i < 3; i++)
      expect(await balance(i)).toMatchObject({ balance: 100, held: 50, available: 50 });

    // 30 concurrent debits of 10 over the processes: room for exactly 5 (a retried key counts once).
    const debits = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        api(i, "POST", "/v1/customers/wallet/balance/debits", { amount: 10, idempotency_key: `d-${i % 15}` }),
      ),
    );
    // Applied once per key (201), replayed for its twin (200), or refused (402) and changing nothing.
    expect(debits.filter((d) => d.status === 201).length).toBe(5);
    for (const d of debits.filter((d) => d.status === 200)) expect(d.body.replayed).toBe(true);
    for (const d of debits.filter((d) => d.status !== 201 && d.status !== 200)) {
      expect(d.status, d.text).toBe(402);
      expect(d.body.error.code).toBe("INSUFFICIENT_BALANCE");
    }
    for (let i = 0; i < 3; i++)
      expect(await balance(i)).toMatchObject({ balance: 50, held: 50, available: 0 });
    const more = await api(1, "POST", "/v1/check", {
      event: { type: "paid.call", customer: "wallet" },
      reserve: { ttl_seconds: 60 },
    });
    expect(more.body).toMatchObject({ allowed: false, code: "INSUFFICIENT_BALANCE" });
  }, 120_000);

  it("a customer moved to another plan through one process is checked under the new plan by every process", async () => {
    for (const [plan, amount] of [
      ["tiny", 1],
      ["big", 1000],
    ] as const) {
      const res = await api(0, "PUT", `/v1/plans/${plan}`, {
        name: plan,
        limits: [{ id: "plan-requests", meter: "requests", amount, period: "month" }],
      });
      expect(res.status, res.text).toBe(201);
    }
    expect((await api(0, "PUT", "/v1/customers/mover", { plan: "tiny" })).status).toBe(201);
    const check = (i: number) =>
      api(i, "POST", "/v1/check", { event: { type: "llm.completion", customer: "mover" } });
    // Every process has the customer cached on the tiny plan (1 request a month).
    for (let i = 0; i < 3; i++) expect((await check(i)).body.limits[0]).toMatchObject({ limit: 1 });
    expect((await api(0, "PUT", "/v1/customers/mover", { plan: "big" })).status).toBe(200);
    for (let i = 0; i < 3; i++) {
      let limit: number | undefined;
      for (let attempt = 0; attempt < 50 && limit !== 1000; attempt++) {
        if (attempt > 0) await new Promise((r) => setTimeout(r, 20)); // the news travels by pub/sub
        limit = (await check(i)).body.limits[0]?.limit;
      }
      expect(limit, `process ${i}`).toBe(1000);
    }
  }, 60_000);

  it("a 60/minute rate limit admits exactly 60 across the processes in a window", async () => {
    const put = await api(0, "PUT", "/v1/rate-limits/rpm", {
      scope: "customer",
      limit: 60,
      window_seconds: 60,
      algorithm: "sliding_window",
      // Every customer has this one; open, so that without Redis only the quotas below decide.
      fail_mode: "open",
    });
    expect(put.status, put.text).toBe(201);
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        api(i, "POST", "/v1/check", { event: { type: "llm.completion", customer: "beta" } }),
      ),
    );
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(results.filter((r) => r.body.allowed).length).toBe(60);
    for (const r of results.filter((r) => !r.body.allowed)) expect(r.body.code).toBe("RATE_LIMIT_EXCEEDED");
  }, 60_000);

  it("Redis stopped mid-run: closed limits deny, open allow (degraded), recorded events are kept; Redis back empty: counters equal PostgreSQL, holds come back", async () => {
    const put = await api(0, "PUT", "/v1/limits/gamma-cap", {
      customer: "gamma",
      meter: "requests",
      amount: 1000,
      period: "month",
    });
    expect(put.status).toBe(201);
    const events = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => ({
        id: `gamma_${from + i}`,
        type: "llm.completion",
        customer: "gamma",
      }));
    expect((await api(0, "POST", "/v1/events", { events: events(0, 30) })).status).toBe(202);
    const held = await api(1, "POST", "/v1/check", {
      event: { type: "llm.completion", customer: "gamma" },
      reserve: { ttl_seconds: 600 },
    });
    expect(held.body.allowed).toBe(true);
    const state = async (i: number) =>
      (await api(i, "GET", "/v1/customers/gamma/limits")).body.data?.find(
        (l: { id: string }) => l.id === "gamma-cap",
      );
    expect(await state(2)).toMatchObject({ used: 30, reserved: 1 });

    // delta: an open limit on tier=free events, a closed one on tier=paid events.
    expect((await api(0, "PUT", "/v1/customers/delta", {})).status).toBe(201);
    for (const [id, mode, tier] of [
      ["delta-open", "open", "free"],
      ["delta-closed", "closed", "paid"],
    ] as const) {
      const res = await api(0, "PUT", `/v1/limits/${id}`, {
        customer: "delta",
        meter: "requests",
        amount: 1000,
        period: "day",
        fail_mode: mode,
        filter: { tier },
      });
      expect(res.status, res.text).toBe(201);
    }
    const deltaCheck = (i: number, tier: string) =>
      api(i, "POST", "/v1/check", {
        event: { type: "llm.completion", customer: "delta", dimensions: { tier } },
      });
    for (let i = 0; i < 3; i++) {
      expect((await deltaCheck(i, "free")).body).toEqual(expect.objectContaining({ allowed: true }));
      expect((await deltaCheck(i, "free")).body.degraded).toBeUndefined();
    }

    await stopRedis();
    // Without Redis each limit's fail_mode answers (closed by default), and the answer says so.
    const during = await api(2, "POST", "/v1/check", {
      event: { type: "llm.completion", customer: "gamma" },
    });
    expect(during.status, during.text).toBe(200);
    expect(during.body).toMatchObject({ allowed: false, code: "UNAVAILABLE", degraded: true });
    for (let i = 0; i < 3; i++) {
      expect((await deltaCheck(i, "free")).body).toMatchObject({ allowed: true, degraded: true });
      expect((await deltaCheck(i, "paid")).body).toMatchObject({
        allowed: false,
        code: "UNAVAILABLE",
        degraded: true,
      });
    }
    // /metrics says so: the limit store is down and degraded checks are counted by answer.
    const metricsDuring = await call(servers[2]!.url, "GET", "/metrics");
    expect(metricsDuring.text).toMatch(/^tollgate_limit_store_up 0$/m);
    expect(
      Number(metricsDuring.text.match(/^tollgate_checks_degraded_total\{allowed="false"\} (\d+)$/m)?.[1]),
    ).toBeGreaterThanOrEqual(2);
    expect(
      Number(metricsDuring.text.match(/^tollgate_checks_degraded_total\{allowed="true"\} (\d+)$/m)?.[1]),
    ).toBeGreaterThanOrEqual(1);
    // Usage keeps being recorded: PostgreSQL is the source of truth.
    const rec = await api(1, "POST", "/v1/events", { events: events(30, 20) });
    expect(rec.status, rec.text).toBe(202);
    expect(rec.body).toEqual({ accepted: 20, duplicates: 0 });

    await startRedis(); // empty: nothing survived
    // Each process reconnects by itself (degraded meanwhile): wait until every one of them is back.
    for (const p of [0, 1, 2]) {
      let back: Awaited<ReturnType<typeof api>> | undefined;
      for (let i = 0; i < 150; i++) {
        back = await api(p, "POST", "/v1/check", { event: { type: "llm.completion", customer: "gamma" } });
        if (back.status === 200 && !back.body.degraded) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(back!.status, back!.text).toBe(200);
      expect(back!.body.degraded, `process ${p} still degraded`).toBeUndefined();
    }
    expect((await deltaCheck(1, "paid")).body).toMatchObject({ allowed: true });
    expect((await call(servers[2]!.url, "GET", "/metrics")).text).toMatch(/^tollgate_limit_store_up 1$/m);
    // Counters rebuilt from PostgreSQL: the 50 recorded events; the active reservation's hold is back.
    const meterTotal = await api(0, "GET", "/v1/meters/requests/query?customer=gamma");
    expect(meterTotal.body.data[0].value).toBe(50);
    for (let i = 0; i < 3; i++) expect(await state(i)).toMatchObject({ used: 50, reserved: 1 });
    const commit = await api(2, "POST", `/v1/reservations/${held.body.reservation.id}/commit`, {});
    expect(commit.status).toBe(200);
    expect(await state(1)).toMatchObject({ used: 51, reserved: 0 });
  }, 120_000);
});
