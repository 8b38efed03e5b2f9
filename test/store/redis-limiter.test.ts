// RedisLimiter's check script on its own: two Engines (two "processes") on one PostgreSQL schema and
// one Redis, no sweeper, a clock the test moves. Needs PostgreSQL and Redis (TOLLGATE_TEST_REDIS_URL).
import { Engine } from "@tollgate/core";
import { keyMinter } from "@tollgate/server";
import { PostgresStore } from "@tollgate/store-postgres";
import { RedisLimiter } from "@tollgate/store-redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isValidTimeZone } from "../../packages/cli/src/timezone.js";
import { dropSchema, freshSchema, PG_URL } from "./pg.js";

const REDIS_URL = process.env.TOLLGATE_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const WS = "default";
const T0 = Date.parse("2026-03-10T12:00:00Z");

describe("RedisLimiter check script", () => {
  const schema = freshSchema("tg_redis");
  let now = T0;
  const clock = { now: () => now };
  const stores: PostgresStore[] = [];
  const limiters: RedisLimiter[] = [];
  const engines: Engine[] = [];

  beforeAll(async () => {
    for (let i = 0; i < 2; i++) {
      const store = await PostgresStore.open({ url: PG_URL, schema });
      stores.push(store);
      const engine = new Engine({
        store,
        clock,
        keys: keyMinter,
        isValidTimeZone,
        limiter: (ctx) => {
          const limiter = new RedisLimiter(ctx, { url: REDIS_URL, prefix: schema });
          limiters.push(limiter);
          return limiter;
        },
      });
      if (i === 0) await engine.bootstrap(WS);
      await engine.start();
      engines.push(engine);
    }
    await engines[0]!.putMeter(WS, "tokens", { event_type: "llm", aggregation: "sum", value: "tokens" });
    await engines[0]!.putCustomer(WS, "acme", {});
    await engines[0]!.putLimit(WS, "concurrency_limit", "par", {
      customer: "acme",
      scope: "customer",
      max: 2,
      lease_ttl_seconds: 3600,
    });
    await engines[0]!.putLimit(WS, "limit", "cap", {
      customer: "acme",
      meter: "tokens",
      amount: 1000,
      period: "month",
    });
  });

  /** Deletes this test's keys from Redis: what a flush or a replaced Redis leaves. */
  async function flushRedis(): Promise<void> {
    const redis = limiters[0]?.redis;
    if (redis && "scanStream" in redis)
      for await (const keys of redis.scanStream({ match: `${schema}:*`, count: 500 }) as AsyncIterable<
        string[]
      >)
        if (keys.length) await redis.del(...keys);
  }

  afterAll(async () => {
    await flushRedis();
    for (const l of limiters) await l.close();
    for (const s of stores) await s.close();
    await dropSchema(schema);
  });

  const check = (engine: Engine, tokens: number, ttlSeconds: number) =>
    engine.check(WS, {
      event: { type: "llm", customer: "acme", values: { tokens } },
      reserve: { ttl_seconds: ttlSeconds },
    });

  it("a later reservation that expires first is freed by the next check of its customer, in any process", async () => {
    // Process 1 reserves a (120 s), then b (60 s): b's expiry is now the customer's earliest.
    const a = await check(engines[0]!, 100, 120);
    const b = await check(engines[0]!, 200, 60);
    expect(a.allowed && b.allowed).toBe(true);
    // Process 2 never saw them (nothing to sweep): only the script frees what expired.
    now = T0 + 59_000;
    const full = await check(engines[1]!, 1, 60);
    expect(full.code).toBe("CONCURRENCY_LIMIT_EXCEEDED");
    expect(full.limits.find((l) => l.id === "cap")).toMatchObject({ reserved: 300 });

    now = T0 + 61_000;
    const afterB = await check(engines[1]!, 1, 600);
    expect(afterB.allowed).toBe(true);
    expect(afterB.limits.find((l) => l.id === "cap")).toMatchObject({ reserved: 100 });
    // a, and the reservation just made (600 s), hold both slots again.
    now = T0 + 119_000;
    expect((await check(engines[1]!, 1, 60)).code).toBe("CONCURRENCY_LIMIT_EXCEEDED");
    now = T0 + 121_000;
    const afterA = await check(engines[1]!, 1, 60);
    expect(afterA.allowed).toBe(true);
    expect(afterA.limits.find((l) => l.id === "cap")).toMatchObject({ reserved: 1 });
  });

  it("after Redis is emptied, a workspace-wide cap sees every customer's holds before it admits anything", async () => {
    await engines[0]!.putMeter(WS, "steps", { event_type: "run", aggregation: "sum", value: "steps" });
    await engines[0]!.putLimit(WS, "limit", "ws-steps", {
      scope: "workspace",
      meter: "steps",
      amount: 1000,
      period: "month",
    });
    for (const c of ["b1", "b2"]) await engines[0]!.putCustomer(WS, c, {});
    const run = (engine: Engine, customer: string, steps: number, reserve: boolean) =>
      engine.check(WS, {
        event: { type: "run", customer, values: { steps } },
        ...(reserve ? { reserve: { ttl_seconds: 600 } } : {}),
      });
    const held = await run(engines[0]!, "b1", 800, true);
    expect(held.allowed).toBe(true);

    await flushRedis();
    // b2's first check after the flush: b1 has not checked since, but its 800 are held all the same.
    const over = await run(engines[1]!, "b2", 300, false);
    expect(over.allowed).toBe(false);
    expect(over.limits.find((l) => l.id === "ws-steps")).toMatchObject({ reserved: 800, remaining: 200 });
    expect((await run(engines[1]!, "b2", 200, false)).allowed).toBe(true);
    // b1's own subject was rebuilt with it (once): its next check does not put the hold back twice,
    // and releasing the reservation frees it exactly once.
    const again = await run(engines[0]!, "b1", 1, false);
    expect(again.limits.find((l) => l.id === "ws-steps")).toMatchObject({ reserved: 800 });
    await engines[0]!.release(WS, held.reservation!.id);
    const free = await run(engines[1]!, "b2", 1000, false);
    expect(free.allowed).toBe(true);
    expect(free.limits.find((l) => l.id === "ws-steps")).toMatchObject({ reserved: 0 });
  });

  it("a customer id with braces and colons (ids allow them) is rebuilt under its own tag", async () => {
    // Its keys are `prefix:{default|odd}:id{x:}:…`: the tag must be read back from the marker exactly.
    const odd = "odd}:id{x:";
    await engines[0]!.putCustomer(WS, odd, {});
    await engines[0]!.putLimit(WS, "limit", "odd-cap", {
      customer: odd,
      meter: "tokens",
      amount: 50,
      period: "month",
    });
    const first = await engines[1]!.check(WS, {
      event: { type: "llm", customer: odd, values: { tokens: 30 } },
      reserve: { ttl_seconds: 600 },
    });
    expect(first.allowed).toBe(true);
    await flushRedis();
    const over = await engines[0]!.check(WS, {
      event: { type: "llm", customer: odd, values: { tokens: 30 } },
    });
    expect(over.allowed).toBe(false);
    expect(over.limits.find((l) => l.id === "odd-cap")).toMatchObject({ reserved: 30 });
  });
});
