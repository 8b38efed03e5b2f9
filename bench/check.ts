/**
 * bench/check: checks/s and per-call p50/p99 latency of a limit check, each beside a baseline measured
 * in the same run, and the memory per active rate-limit key.
 *
 *   (a) in process: Engine.check over the embedded SQLite store, 3 limits per check (the plan below),
 *       round robin over --keys API keys of --customers customers, awaited one at a time — against
 *       rate-limiter-flexible's RateLimiterMemory.consume(key), 1 limit per call, same keys, same
 *       loop. Plus a concurrent variant (--depth calls in flight) for both.
 *   (b) over HTTP: POST /v1/check on `tollgate serve` (own process, API self-protection off) — against
 *       a bare Fastify route answering a constant (bench/bare-fastify.ts, own process), both driven by
 *       autocannon with the same connections and bodies rotating over the same keys, in alternating
 *       rounds (both servers idle while the other is measured) so that drifting load hits both.
 *   (c) memory per active rate-limit key (bench/check-memory.ts in a child with --expose-gc).
 *   (d) shared state (scale-out): Engine.check over PostgreSQL + Redis (RedisLimiter, 3 limits, one
 *       EVALSHA per check) — against rate-limiter-flexible's RateLimiterRedis.consume(key), 1 limit,
 *       same keys, on the same private redis-server (a free port, started and stopped here); Redis
 *       round trips per check counted from INFO commandstats. Needs PostgreSQL (TOLLGATE_BENCH_POSTGRES_URL,
 *       default postgres://postgres@127.0.0.1:5432/test, a fresh schema dropped after) and redis-server.
 *
 *   npm run bench:check -- [--keys 10000] [--customers 1000] [--seconds 3] [--depth 64]
 *                          [--connections 50] [--http-seconds 10] [--memory-keys 200000] [--skip a,b,c]
 *
 * Everything runs on 127.0.0.1, in temp folders removed at the end. TOLLGATE_BENCH_DEBUG=1 prints
 * phase timings on stderr.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type CheckResult, Engine } from "@tollgate/core";
import { keyMinter } from "@tollgate/server";
import { PostgresStore } from "@tollgate/store-postgres";
import { RedisLimiter } from "@tollgate/store-redis";
import { SqliteStore } from "@tollgate/store-sqlite";
import autocannon from "autocannon";
import { Redis } from "ioredis";
import { RateLimiterMemory, RateLimiterRedis } from "rate-limiter-flexible";
import { Pool } from "undici";
import { isValidTimeZone } from "../packages/cli/src/timezone.js";
import type { MemoryRow } from "./check-memory.js";
import { cpuSeconds, fmt, freePort, ROOT, spawnServer } from "./support.js";

const { values: args } = parseArgs({
  options: {
    keys: { type: "string", default: "10000" },
    customers: { type: "string", default: "1000" },
    seconds: { type: "string", default: "3" },
    depth: { type: "string", default: "64" },
    connections: { type: "string", default: "50" },
    "http-seconds": { type: "string", default: "10" },
    "memory-keys": { type: "string", default: "200000" },
    skip: { type: "string", default: "" },
  },
});
const KEYS = Number(args.keys);
const CUSTOMERS = Math.min(KEYS, Number(args.customers));
const SECONDS = Number(args.seconds);
const DEPTH = Number(args.depth);
const CONNECTIONS = Number(args.connections);
const HTTP_SECONDS = Number(args["http-seconds"]);
const MEMORY_KEYS = Number(args["memory-keys"]);
const skip = new Set(args.skip.split(","));
const T0 = performance.now();
/** Progress on stderr with TOLLGATE_BENCH_DEBUG=1 (phase timings). */
const debug = (what: string) => {
  if (process.env.TOLLGATE_BENCH_DEBUG)
    process.stderr.write(`[${((performance.now() - T0) / 1000).toFixed(1)} s] ${what}\n`);
};

const WS = "default";
const key = (i: number) => `key_${100_000 + i}`;
const customer = (i: number) => `cust_${100_000 + i}`;
/** Every check is for one API key of one customer: key i belongs to customer i mod CUSTOMERS. */
const checkBody = (i: number) => ({
  event: {
    type: "llm.completion",
    customer: customer(i % CUSTOMERS),
    values: { tokens: 100 },
    dimensions: { key: key(i) },
  },
});

const METER = { event_type: "llm.completion", aggregation: "sum" as const, value: "tokens" };
/** The 3 limits that apply to every check; sized so that no check of the run is denied. */
const PLAN = {
  name: "Pro",
  rate_limits: [
    { id: "rpm-per-key", scope: "key", limit: 6000, window_seconds: 60, algorithm: "sliding_window" },
    {
      id: "tpm-per-customer",
      scope: "customer",
      value: "tokens",
      limit: 10_000_000,
      window_seconds: 60,
      algorithm: "token_bucket",
    },
  ],
  limits: [{ id: "monthly-tokens", meter: "tokens", amount: 1_000_000_000_000, period: "month" }],
};
const PLAN_TEXT =
  "rpm-per-key sliding_window 6000/min per dimensions.key, tpm-per-customer token_bucket 10M tokens/min " +
  "per customer, monthly-tokens quota 1e12 tokens/month per customer (all on plan 'pro')";

interface Figures {
  rate: number;
  p50: number;
  p99: number;
  calls: number;
  denied: number;
}

function percentiles(samples: Float64Array, n: number) {
  const sorted = samples.slice(0, Math.min(n, samples.length)).sort();
  const pick = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
  return { p50: pick(0.5), p99: pick(0.99) };
}

const latencies = new Float64Array(4_000_000);

/** One call at a time, round robin over the keys, for `seconds`; every call's latency sampled. */
async function sequential<T>(
  call: (i: number) => Promise<T>,
  allowed: (r: T) => boolean,
  seconds: number,
): Promise<Figures> {
  let n = 0;
  let denied = 0;
  let i = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  for (;;) {
    const s = performance.now();
    try {
      if (!allowed(await call(i))) denied++;
    } catch {
      denied++; // RateLimiterMemory rejects when over its limit
    }
    const e = performance.now();
    if (n < latencies.length) latencies[n] = e - s;
    n++;
    if (++i === KEYS) i = 0;
    if (e >= end) break;
  }
  const rate = n / ((performance.now() - t0) / 1000);
  return { rate, calls: n, denied, ...percentiles(latencies, n) };
}

/** `depth` calls in flight (each worker awaits its own), round robin over the keys: throughput only. */
async function concurrent<T>(
  call: (i: number) => Promise<T>,
  allowed: (r: T) => boolean,
  seconds: number,
  depth: number,
): Promise<Figures> {
  let n = 0;
  let denied = 0;
  let i = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: depth }, async () => {
      while (performance.now() < end) {
        const k = i;
        if (++i === KEYS) i = 0;
        try {
          if (!allowed(await call(k))) denied++;
        } catch {
          denied++;
        }
        n++;
      }
    }),
  );
  return { rate: n / ((performance.now() - t0) / 1000), calls: n, denied, p50: Number.NaN, p99: Number.NaN };
}

const best = (a: Figures, b: Figures) => (b.rate > a.rate ? b : a);
const us = (ms: number) => `${(ms * 1000).toFixed(1)} µs`;

// ---- (a) in process ----------------------------------------------------------------------------

async function inProcess(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "tollgate-bench-check-"));
  const store = new SqliteStore({ path: join(dir, "tollgate.db") });
  try {
    const engine = new Engine({ store, clock: { now: () => Date.now() }, keys: keyMinter, isValidTimeZone });
    await engine.bootstrap(WS);
    await engine.start();
    await engine.putMeter(WS, "tokens", METER);
    await engine.putPlan(WS, "pro", PLAN);
    for (let i = 0; i < CUSTOMERS; i += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, CUSTOMERS - i) }, (_, j) =>
          engine.putCustomer(WS, customer(i + j), { plan: "pro" }),
        ),
      );
    }
    // Inputs as the server hands them over: parsed from JSON, prepared before the clock starts.
    const inputs = Array.from({ length: KEYS }, (_, i) => JSON.parse(JSON.stringify(checkBody(i))));
    const names: string[] = JSON.parse(JSON.stringify(Array.from({ length: KEYS }, (_, i) => key(i))));
    const tollgate = (i: number) => engine.check(WS, inputs[i]);
    const tollgateAllowed = (r: CheckResult) => r.allowed && r.limits.length === 3;
    const rlf = new RateLimiterMemory({ points: 6000, duration: 60 }); // same limit as rpm-per-key
    const baseline = (i: number) => rlf.consume(names[i]!);
    const baselineAllowed = () => true;
    // For context: 3 RateLimiterMemory per call, shaped like the 3 limits (a timer per key and
    // duration caps its window below 2^31 ms, so "monthly" is 24 days here).
    const perCustomerTokens = new RateLimiterMemory({ points: 10_000_000, duration: 60 });
    const monthlyTokens = new RateLimiterMemory({ points: 1e12, duration: 24 * 86_400 });
    const owners: string[] = inputs.map((x) => x.event.customer);
    const baseline3 = async (i: number) => {
      await rlf.consume(names[i]!);
      await perCustomerTokens.consume(owners[i]!, 100);
      return monthlyTokens.consume(owners[i]!, 100);
    };

    // First pass: loads every customer's monthly usage from the store and creates every rate state.
    for (let i = 0; i < KEYS; i++) {
      const r = await tollgate(i);
      if (!tollgateAllowed(r)) throw new Error(`warm-up check ${i} was not allowed with 3 limits`);
    }
    // JIT warm-up of both loops, then alternating measured rounds; the best round of each is reported.
    await sequential(baseline, baselineAllowed, 1);
    await sequential(tollgate, tollgateAllowed, 1);
    let base = await sequential(baseline, baselineAllowed, SECONDS);
    let tg = await sequential(tollgate, tollgateAllowed, SECONDS);
    base = best(base, await sequential(baseline, baselineAllowed, SECONDS));
    tg = best(tg, await sequential(tollgate, tollgateAllowed, SECONDS));
    await sequential(baseline3, baselineAllowed, 1);
    const base3 = await sequential(baseline3, baselineAllowed, SECONDS);
    const baseC = await concurrent(baseline, baselineAllowed, SECONDS / 2, DEPTH);
    const tgC = await concurrent(tollgate, tollgateAllowed, SECONDS / 2, DEPTH);

    console.log(
      `(a) in process, ${fmt(KEYS)} keys of ${fmt(CUSTOMERS)} customers round robin, best of 2 rounds of ${SECONDS} s`,
    );
    console.log(`    limits: ${PLAN_TEXT}`);
    console.log(`    store: SqliteStore in a temp dir, clock Date.now, no reservation`);
    const line = (label: string, f: Figures, extra = "") =>
      console.log(
        `  ${label.padEnd(52)} ${fmt(f.rate).padStart(10)} checks/s` +
          (Number.isNaN(f.p50) ? "" : `  p50 ${us(f.p50)}  p99 ${us(f.p99)}`) +
          extra +
          (f.denied ? `  (${fmt(f.denied)} denied!)` : ""),
      );
    line("baseline  RateLimiterMemory.consume, 1 limit, awaited", base);
    line(
      "tollgate  engine.check, 3 limits, awaited",
      tg,
      `  (${(tg.rate / base.rate).toFixed(2)}x baseline)`,
    );
    line(
      "(context) 3 RateLimiterMemory per call, awaited",
      base3,
      `  (tollgate ${(tg.rate / base3.rate).toFixed(2)}x this)`,
    );
    line(`baseline  same, ${DEPTH} calls in flight`, baseC);
    line(
      `tollgate  same, ${DEPTH} calls in flight`,
      tgC,
      `  (${(tgC.rate / baseC.rate).toFixed(2)}x baseline)`,
    );
    console.log("  target: >= 1.0x baseline throughput while checking 3 limits");
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- (b) over HTTP -----------------------------------------------------------------------------

interface HttpRound {
  /** Server process CPU seconds during the round. */
  cpu: number;
  ok: number;
  non2xx: number;
  errors: number;
  seconds: number;
  latencies: Float64Array;
}

const bodies = Array.from({ length: KEYS }, (_, i) => JSON.stringify(checkBody(i)));

async function cannon(url: string, token: string, seconds: number, pid?: number): Promise<HttpRound> {
  let next = 0;
  const cpu0 = cpuSeconds(pid);
  const instance = autocannon({
    url,
    connections: CONNECTIONS,
    duration: seconds,
    requests: [
      {
        method: "POST",
        path: "/v1/check",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        // Bodies rotate over every key, across all connections.
        setupRequest: (req) => {
          const body = bodies[next]!;
          if (++next === bodies.length) next = 0;
          return { ...req, body };
        },
      },
    ],
  });
  let n = 0;
  instance.on("response", (_client, status, _bytes, ms) => {
    if (status >= 200 && status < 300 && n < latencies.length) latencies[n++] = ms;
  });
  const result = await instance;
  return {
    cpu: cpuSeconds(pid) - cpu0,
    ok: result["2xx"],
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    seconds: result.duration,
    latencies: latencies.slice(0, n),
  };
}

interface HttpFigures {
  /** Server CPU µs per answered request. */
  cpuPerRequest: number;
  rate: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

/** The rounds of one side together: total 2xx over total time, percentiles over every response. */
function merge(rounds: HttpRound[]): HttpFigures {
  const all = new Float64Array(rounds.reduce((n, r) => n + r.latencies.length, 0));
  let at = 0;
  for (const r of rounds) {
    all.set(r.latencies, at);
    at += r.latencies.length;
  }
  const sum = (f: (r: HttpRound) => number) => rounds.reduce((n, r) => n + f(r), 0);
  return {
    cpuPerRequest: (sum((r) => r.cpu) / sum((r) => r.ok)) * 1e6,
    rate: sum((r) => r.ok) / sum((r) => r.seconds),
    non2xx: sum((r) => r.non2xx),
    errors: sum((r) => r.errors),
    ...percentiles(all, all.length),
  };
}

async function bareFastify(): Promise<{ url: string; pid: number | undefined; stop(): Promise<void> }> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(ROOT, "bench/bare-fastify.ts"), "--port", String(port)],
    { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"] },
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/health`)).ok) break;
    } catch {}
    if (Date.now() > deadline) {
      child.kill("SIGTERM");
      throw new Error("bare fastify did not start");
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    pid: child.pid,
    async stop() {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

const HTTP_ROUNDS = 2;

async function overHttp(): Promise<void> {
  const warm = Math.min(2, HTTP_SECONDS);
  const roundSeconds = Math.max(1, Math.round(HTTP_SECONDS / HTTP_ROUNDS));
  debug("(b) starting");
  const bare = await bareFastify();
  const base: HttpRound[] = [];
  const tg: HttpRound[] = [];
  try {
    const server = await spawnServer(["--api-rate-limit", "0"]);
    try {
      debug("tollgate serve started");
      const pool = new Pool(server.url, { connections: 32 });
      const headers = { authorization: `Bearer ${server.adminKey}`, "content-type": "application/json" };
      const send = async (method: "PUT" | "POST", path: string, body: unknown) => {
        const res = await pool.request({ method, path, headers, body: JSON.stringify(body) });
        const json = (await res.body.json()) as CheckResult;
        if (res.statusCode >= 300)
          throw new Error(`${method} ${path}: ${res.statusCode} ${JSON.stringify(json)}`);
        return json;
      };
      await send("PUT", "/v1/meters/tokens", METER);
      await send("PUT", "/v1/plans/pro", PLAN);
      for (let i = 0; i < CUSTOMERS; i += 200) {
        await Promise.all(
          Array.from({ length: Math.min(200, CUSTOMERS - i) }, (_, j) =>
            send("PUT", `/v1/customers/${customer(i + j)}`, { plan: "pro" }),
          ),
        );
      }
      debug("customers created");
      // One check per key (loads every customer's usage), each allowed with its 3 limits.
      for (let i = 0; i < KEYS; i += 200) {
        const results = await Promise.all(
          Array.from({ length: Math.min(200, KEYS - i) }, (_, j) =>
            send("POST", "/v1/check", checkBody(i + j)),
          ),
        );
        if (results.some((r) => !r.allowed || r.limits.length !== 3))
          throw new Error("a warm-up check failed");
      }
      await pool.close();
      debug("warm-up checks done");
      await cannon(bare.url, "none", warm);
      await cannon(server.url, server.adminKey, warm);
      for (let r = 0; r < HTTP_ROUNDS; r++) {
        base.push(await cannon(bare.url, "none", roundSeconds, bare.pid));
        tg.push(await cannon(server.url, server.adminKey, roundSeconds, server.child.pid));
        debug(`round ${r + 1} done`);
      }
    } finally {
      await server.stop();
    }
  } finally {
    await bare.stop();
  }
  const b = merge(base);
  const t = merge(tg);

  console.log(
    `(b) over HTTP on 127.0.0.1, autocannon ${CONNECTIONS} connections (keep-alive, no pipelining), ` +
      `${HTTP_ROUNDS} alternating rounds of ${roundSeconds} s per side after ${warm} s warm-up, ` +
      `bodies rotating over the ${fmt(KEYS)} keys`,
  );
  console.log(
    "    tollgate serve: --api-rate-limit 0 (API self-protection off), log level warn, same 3 limits",
  );
  const line = (label: string, f: HttpFigures, extra = "") =>
    console.log(
      `  ${label.padEnd(40)} ${fmt(f.rate).padStart(8)} req/s  p50 ${f.p50.toFixed(2)} ms  p99 ${f.p99.toFixed(2)} ms` +
        `  non-2xx ${fmt(f.non2xx)}  errors ${fmt(f.errors)}` +
        (Number.isNaN(f.cpuPerRequest) ? "" : `  server CPU ${f.cpuPerRequest.toFixed(0)} µs/req`) +
        extra,
    );
  line("baseline  bare Fastify, constant JSON", b);
  line("tollgate  POST /v1/check", t, `  (${(t.rate / b.rate).toFixed(2)}x baseline)`);
  console.log("  targets: >= 0.7x baseline throughput, p99 <= 10 ms at 50 connections");
}

// ---- (c) memory per active rate-limit key --------------------------------------------------------

function memory(): void {
  const child = spawnSync(
    process.execPath,
    [
      "--expose-gc",
      "--import",
      "tsx",
      join(ROOT, "bench/check-memory.ts"),
      "--keys",
      String(MEMORY_KEYS),
      "--json",
    ],
    { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], timeout: 120_000 },
  );
  if (child.status !== 0) throw new Error(`check-memory exited with ${child.status ?? child.signal}`);
  const rows = JSON.parse(child.stdout.trim().split("\n").at(-1)!) as MemoryRow[];
  console.log(
    `(c) memory per active rate-limit key, ${fmt(MEMORY_KEYS)} keys, V8 heapUsed + arrayBuffers after full GC`,
  );
  const what: Record<string, string> = {
    limiter: "Limiter (engine.check), its own keys",
    "table/limiter-keys": "RateLimitTable, same keys as flat strings",
    "table/subject-keys": 'RateLimitTable, subject only ("key_100000")',
  };
  for (const r of rows) {
    console.log(
      `  ${(what[r.name] ?? r.name).padEnd(46)} ${r.algorithm.padEnd(15)} key ${String(r.keyChars).padStart(2)} chars` +
        `  ${r.bytesPerKey.toFixed(0).padStart(4)} B/key  (slab ${r.slabBytesPerKey.toFixed(0)} B/key: ` +
        `${r.slabSlotBytes} B slot, rest unused capacity)`,
    );
  }
  console.log("  target: <= 200 B per active key");
}

// ---- (d) shared state: PostgreSQL + Redis --------------------------------------------------------

/**
 * Round trips since the last CONFIG RESETSTAT, from INFO commandstats: a script (EVALSHA/EVAL) or a
 * MULTI…EXEC transaction is one round trip (Redis counts the commands inside it too; they are left
 * out). Only scripts and transactions are sent by either side in the measured loops.
 */
async function redisRoundTrips(admin: Redis): Promise<number> {
  const info = await admin.info("commandstats");
  let n = 0;
  for (const m of info.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm))
    if (m[1] === "evalsha" || m[1] === "eval" || m[1] === "exec") n += Number(m[2]);
  return n;
}

/** redis-server's CPU seconds so far (user + system), from INFO cpu. */
async function redisCpuSeconds(admin: Redis): Promise<number> {
  const info = await admin.info("cpu");
  const user = Number(info.match(/used_cpu_user:([\d.]+)/)?.[1] ?? 0);
  const sys = Number(info.match(/used_cpu_sys:([\d.]+)/)?.[1] ?? 0);
  return user + sys;
}

/** Runs a measurement and adds the CPU per call of this process and of redis-server. */
async function withCpu(admin: Redis, run: () => Promise<Figures>) {
  const r0 = await redisCpuSeconds(admin);
  const c0 = process.cpuUsage();
  const f = await run();
  const c = process.cpuUsage(c0);
  const r1 = await redisCpuSeconds(admin);
  return { ...f, nodeUs: (c.user + c.system) / f.calls, redisUs: ((r1 - r0) * 1e6) / f.calls };
}

async function sharedState(): Promise<void> {
  const port = await freePort();
  const server = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    {
      stdio: "ignore",
    },
  );
  const url = `redis://127.0.0.1:${port}`;
  const admin = new Redis(url);
  // Refused until redis-server listens (the loop below waits for it); not worth a line on the output.
  admin.on("error", () => {});
  for (let i = 0; i < 100 && (await admin.ping().catch(() => "")) !== "PONG"; i++)
    await new Promise((r) => setTimeout(r, 50));
  const schema = `tg_bench_${process.pid}`;
  const store = await PostgresStore.open({
    url: process.env.TOLLGATE_BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test",
    schema,
  });
  let limiter: RedisLimiter | undefined;
  const rlfClient = new Redis(url);
  try {
    const engine = new Engine({
      store,
      clock: { now: () => Date.now() },
      keys: keyMinter,
      isValidTimeZone,
      limiter: (ctx) => {
        limiter = new RedisLimiter(ctx, { url, prefix: "bench" });
        return limiter;
      },
    });
    await engine.bootstrap(WS);
    await engine.start();
    await engine.putMeter(WS, "tokens", METER);
    await engine.putPlan(WS, "pro", PLAN);
    for (let i = 0; i < CUSTOMERS; i += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, CUSTOMERS - i) }, (_, j) =>
          engine.putCustomer(WS, customer(i + j), { plan: "pro" }),
        ),
      );
    }
    const inputs = Array.from({ length: KEYS }, (_, i) => JSON.parse(JSON.stringify(checkBody(i))));
    const names: string[] = Array.from({ length: KEYS }, (_, i) => key(i));
    const tollgate = (i: number) => engine.check(WS, inputs[i]);
    const tollgateAllowed = (r: CheckResult) => r.allowed && r.limits.length === 3;
    const rlf = new RateLimiterRedis({
      storeClient: rlfClient,
      points: 6000,
      duration: 60,
      keyPrefix: "rlf",
    });
    const baseline = (i: number) => rlf.consume(names[i]!);
    const baselineAllowed = () => true;
    // First pass: every counter loaded from PostgreSQL into Redis, every state seen once.
    for (let i = 0; i < KEYS; i++) {
      const r = await tollgate(i);
      if (!tollgateAllowed(r)) throw new Error(`warm-up check ${i} was not allowed with 3 limits`);
    }
    for (let i = 0; i < KEYS; i++) await baseline(i);
    await admin.config("RESETSTAT");
    let base = await sequential(baseline, baselineAllowed, SECONDS);
    const baseTrips = (await redisRoundTrips(admin)) / base.calls;
    await admin.config("RESETSTAT");
    let tg = await sequential(tollgate, tollgateAllowed, SECONDS);
    const tgTrips = (await redisRoundTrips(admin)) / tg.calls;
    base = best(base, await sequential(baseline, baselineAllowed, SECONDS));
    tg = best(tg, await sequential(tollgate, tollgateAllowed, SECONDS));
    const baseC = await withCpu(admin, () => concurrent(baseline, baselineAllowed, SECONDS / 2, DEPTH));
    await admin.config("RESETSTAT");
    const tgC = await withCpu(admin, () => concurrent(tollgate, tollgateAllowed, SECONDS / 2, DEPTH));
    const tgCTrips = (await redisRoundTrips(admin)) / tgC.calls;
    const cpu = (f: { nodeUs: number; redisUs: number }) =>
      `  CPU/check: process ${f.nodeUs.toFixed(1)} µs, redis-server ${f.redisUs.toFixed(1)} µs`;

    console.log(
      `(d) shared state, ${fmt(KEYS)} keys of ${fmt(CUSTOMERS)} customers round robin, best of 2 rounds of ${SECONDS} s`,
    );
    console.log(`    limits: ${PLAN_TEXT}`);
    console.log("    stores: PostgresStore (fresh schema) + RedisLimiter; baseline on the same redis-server");
    const line = (label: string, f: Figures, extra = "") =>
      console.log(
        `  ${label.padEnd(52)} ${fmt(f.rate).padStart(10)} checks/s` +
          (Number.isNaN(f.p50) ? "" : `  p50 ${us(f.p50)}  p99 ${us(f.p99)}`) +
          extra +
          (f.denied ? `  (${fmt(f.denied)} denied!)` : ""),
      );
    line(
      "baseline  RateLimiterRedis.consume, 1 limit, awaited",
      base,
      `  ${baseTrips.toFixed(2)} Redis round trips/check`,
    );
    line(
      "tollgate  engine.check over Redis, 3 limits, awaited",
      tg,
      `  (${(tg.rate / base.rate).toFixed(2)}x baseline)  ${tgTrips.toFixed(2)} Redis round trips/check`,
    );
    line(`baseline  same, ${DEPTH} calls in flight`, baseC, cpu(baseC));
    line(
      `tollgate  same, ${DEPTH} calls in flight`,
      tgC,
      `  (${(tgC.rate / baseC.rate).toFixed(2)}x baseline)  ${tgCTrips.toFixed(2)} Redis round trips/check${cpu(tgC)}`,
    );
    console.log(
      "  target: >= 1.0x baseline throughput while checking 3 limits, exactly 1 Redis round trip per check",
    );
  } finally {
    await limiter?.close();
    rlfClient.disconnect();
    await store.dropSchema().catch(() => {});
    await store.close();
    admin.disconnect();
    server.kill("SIGKILL");
  }
}

console.log(`bench/check: node ${process.version}`);
if (!skip.has("a")) await inProcess();
if (!skip.has("b")) await overHttp();
if (!skip.has("c")) memory();
if (!skip.has("d")) await sharedState();
