import { afterAll, describe, expect, it } from "vitest";
import { expectError } from "../support/server.js";
import {
  check,
  closeAll,
  customerLimit,
  customerLimits,
  DAY,
  freshServer,
  HOUR,
  iso,
  MINUTE,
  outcome,
  put,
  putCustomer,
  record,
  T0,
} from "./helpers.js";

afterAll(closeAll);

const quota = { meter: "tokens", amount: 100, period: "month" };

describe("quota definitions", () => {
  it("PUT /v1/limits/{id} per customer, per plan and workspace-wide: 201 then 200, read back per scope", async () => {
    const { t } = await freshServer();
    await put(t, "/v1/plans/pro", { name: "Pro" });

    const own = await t.api("PUT", "/v1/limits/cap", { customer: "acme", ...quota });
    expect(own.status).toBe(201);
    expect(own.body).toMatchObject({
      id: "cap",
      customer: "acme",
      meter: "tokens",
      amount: 100,
      period: "month",
      enforcement: "hard",
      thresholds: [80, 95],
    });
    const replaced = await t.api("PUT", "/v1/limits/cap", { customer: "acme", ...quota, amount: 250 });
    expect(replaced.status).toBe(200);
    expect(replaced.body.amount).toBe(250);

    // The same id may exist once per scope.
    const plan = await t.api("PUT", "/v1/limits/cap", { plan: "pro", ...quota, amount: 300 });
    expect(plan.status).toBe(201);
    expect(plan.body.plan).toBe("pro");
    const ws = await t.api("PUT", "/v1/limits/cap", { ...quota, amount: 400, period: "day" });
    expect(ws.status).toBe(201);
    expect(ws.body.plan).toBeUndefined();
    expect(ws.body.customer).toBeUndefined();
    expect((await t.api("PUT", "/v1/limits/cap", { ...quota, amount: 400, period: "day" })).status).toBe(200);

    const byCustomer = await t.api("GET", "/v1/limits/cap?customer=acme");
    expect(byCustomer.status).toBe(200);
    expect(byCustomer.body).toMatchObject({ id: "cap", customer: "acme", amount: 250 });
    expect((await t.api("GET", "/v1/limits/cap?plan=pro")).body).toMatchObject({ plan: "pro", amount: 300 });
    expect((await t.api("GET", "/v1/limits/cap")).body).toMatchObject({ amount: 400, period: "day" });
    expectError(await t.api("GET", "/v1/limits/cap?customer=bob"), 404, "NOT_FOUND");
    expectError(await t.api("GET", "/v1/limits/nope"), 404, "NOT_FOUND");

    await put(t, "/v1/limits/other", { plan: "pro", ...quota });
    const amounts = (res: { body: { data: { id: string; amount: number }[] } }) =>
      res.body.data.map((l) => `${l.id}:${l.amount}`).sort();
    expect(amounts(await t.api("GET", "/v1/limits"))).toEqual(["cap:250", "cap:300", "cap:400", "other:100"]);
    expect(amounts(await t.api("GET", "/v1/limits?plan=pro"))).toEqual(["cap:300", "other:100"]);
    expect(amounts(await t.api("GET", "/v1/limits?customer=acme"))).toEqual(["cap:250"]);
    expect(amounts(await t.api("GET", "/v1/limits?customer=bob"))).toEqual([]);

    const del = await t.api("DELETE", "/v1/limits/cap?plan=pro");
    expect(del.status).toBe(204);
    expectError(await t.api("GET", "/v1/limits/cap?plan=pro"), 404, "NOT_FOUND");
    expectError(await t.api("DELETE", "/v1/limits/cap?plan=pro"), 404, "NOT_FOUND");
    expect((await t.api("GET", "/v1/limits/cap?customer=acme")).status).toBe(200);
    expect((await t.api("GET", "/v1/limits/cap")).status).toBe(200);
    expect((await t.api("DELETE", "/v1/limits/cap?customer=acme")).status).toBe(204);
    expect((await t.api("DELETE", "/v1/limits/cap")).status).toBe(204);
    expect(amounts(await t.api("GET", "/v1/limits"))).toEqual(["other:100"]);
  });

  it("a deleted limit stops applying at once", async () => {
    const { t } = await freshServer();
    await put(t, "/v1/limits/cap", { customer: "acme", ...quota, amount: 10 });
    await record(t, [{ customer: "acme", values: { tokens_in: 10 } }]);
    expect((await check(t, { customer: "acme", values: { tokens_in: 1 } })).allowed).toBe(false);
    expect((await t.api("DELETE", "/v1/limits/cap?customer=acme")).status).toBe(204);
    const after = await check(t, { customer: "acme", values: { tokens_in: 1 } });
    expect(after.allowed).toBe(true);
    expect(after.limits).toEqual([]);
  });

  it("refuses bad definitions with 400 INVALID_REQUEST naming the field, and stores nothing", async () => {
    const { t } = await freshServer();
    await put(t, "/v1/plans/pro", { name: "Pro" });
    const field = async (body: unknown, expected: string | RegExp) => {
      const err = expectError(await t.api("PUT", "/v1/limits/bad", body), 400, "INVALID_REQUEST");
      expect(String(err.details?.field)).toMatch(expected);
    };
    await field({ customer: "acme", ...quota, meter: "nope" }, /^meter$/);
    await field({ customer: "acme", ...quota, meter: "peak" }, /^meter$/); // a max meter
    await field({ customer: "acme", ...quota, period: "fortnight" }, /^period/);
    await field({ customer: "acme", ...quota, period: { rolling_seconds: 0 } }, /^period/);
    await field({ customer: "acme", ...quota, period: { days: 3 } }, /^period/);
    await field({ plan: "pro", customer: "acme", ...quota }, /^(plan|customer)$/);
    await field({ plan: "missing", ...quota }, /^plan$/);
    await field({ customer: "acme", ...quota, amount: -1 }, /^amount$/);
    await field({ customer: "acme", ...quota, amount: 1.5 }, /^amount$/);
    await field({ customer: "acme", ...quota, enforcement: "strict" }, /^enforcement$/);
    await field({ customer: "acme", meter: "tokens", period: "month" }, /^amount$/);
    await field({ customer: "acme", ...quota, thresholds: [80, 80] }, /^thresholds/);
    await field({ customer: "acme", ...quota, colour: "red" }, /^colour$/);
    expectError(await t.api("GET", "/v1/limits/bad?customer=acme"), 404, "NOT_FOUND");
    expect((await t.api("GET", "/v1/limits")).body.data).toEqual([]);

    // Inline plan limits are checked the same way, with the path into the plan.
    const inline = await t.api("PUT", "/v1/plans/pro", {
      name: "Pro",
      limits: [
        { id: "ok", ...quota },
        { id: "bad", ...quota, meter: "nope" },
      ],
    });
    expect(expectError(inline, 400, "INVALID_REQUEST").details?.field).toBe("limits[1].meter");
    expect((await t.api("GET", "/v1/plans/pro")).body.limits).toEqual([]);
  });
});

describe("whom a quota applies to", () => {
  it("a plan's inline limit applies to every customer on the plan, each with its own counter", async () => {
    const { t } = await freshServer();
    await put(t, "/v1/plans/pro", { name: "Pro", limits: [{ id: "monthly", ...quota }] });
    await putCustomer(t, "a", { plan: "pro" });
    await putCustomer(t, "b", { plan: "pro" });
    await putCustomer(t, "free");

    await record(t, [{ customer: "a", values: { tokens_in: 70 } }]);
    expect(outcome(await check(t, { customer: "a", values: { tokens_in: 30 } }), "monthly").allowed).toBe(
      true,
    );
    const denied = await check(t, { customer: "a", values: { tokens_in: 31 } });
    expect(denied).toMatchObject({ allowed: false, code: "LIMIT_EXCEEDED" });
    // b has its own 100.
    const b = await check(t, { customer: "b", values: { tokens_in: 100 } });
    expect(b.allowed).toBe(true);
    expect(outcome(b, "monthly")).toMatchObject({ limit: 100, remaining: 0 });
    // A customer not on the plan is not limited.
    const free = await check(t, { customer: "free", values: { tokens_in: 10_000 } });
    expect(free).toMatchObject({ allowed: true, limits: [] });
    expect((await customerLimit(t, "a", "monthly")).used).toBe(70);
    expect((await customerLimit(t, "b", "monthly")).used).toBe(0);

    // Moving a customer onto the plan puts it under the limit at once.
    await putCustomer(t, "free", { plan: "pro" });
    expect((await check(t, { customer: "free", values: { tokens_in: 101 } })).code).toBe("LIMIT_EXCEEDED");
  });

  it("PUT /v1/limits {plan} applies to every customer on the plan", async () => {
    const { t } = await freshServer();
    await put(t, "/v1/plans/pro", { name: "Pro" });
    await putCustomer(t, "a", { plan: "pro" });
    await putCustomer(t, "b", { plan: "pro" });
    await put(t, "/v1/limits/monthly", { plan: "pro", ...quota, amount: 50 });
    for (const c of ["a", "b"]) {
      await record(t, [{ customer: c, values: { tokens_in: 50 } }]);
      expect((await check(t, { customer: c, values: { tokens_in: 1 } })).code).toBe("LIMIT_EXCEEDED");
      expect(await customerLimit(t, c, "monthly")).toMatchObject({ limit: 50, used: 50, remaining: 0 });
    }
  });

  it("a customer's own limit with the same id overrides the plan's", async () => {
    const { t } = await freshServer();
    await put(t, "/v1/plans/pro", { name: "Pro", limits: [{ id: "cap", ...quota }] });
    await putCustomer(t, "acme", { plan: "pro" });
    await putCustomer(t, "bob", { plan: "pro" });
    await put(t, "/v1/limits/cap", { customer: "acme", ...quota, amount: 300 });

    await record(t, [
      { customer: "acme", values: { tokens_in: 250 } },
      { customer: "bob", values: { tokens_in: 100 } },
    ]);
    const acme = await check(t, { customer: "acme", values: { tokens_in: 50 } });
    expect(acme.allowed).toBe(true);
    expect(acme.limits.map((l) => [l.id, l.limit])).toEqual([["cap", 300]]);
    expect((await check(t, { customer: "acme", values: { tokens_in: 51 } })).code).toBe("LIMIT_EXCEEDED");
    expect((await check(t, { customer: "bob", values: { tokens_in: 1 } })).code).toBe("LIMIT_EXCEEDED");
    const listed = (await customerLimits(t, "acme")).filter((l) => l.id === "cap");
    expect(listed.map((l) => l.limit)).toEqual([300]);

    // Without the override, the plan's 100 applies again.
    expect((await t.api("DELETE", "/v1/limits/cap?customer=acme")).status).toBe(204);
    expect((await check(t, { customer: "acme", values: { tokens_in: 1 } })).code).toBe("LIMIT_EXCEEDED");
    expect(await customerLimit(t, "acme", "cap")).toMatchObject({ limit: 100, used: 250 });
  });

  it("a workspace-wide limit (no customer, no plan) counts every customer's usage together", async () => {
    const { t } = await freshServer();
    await put(t, "/v1/limits/all", quota);
    await putCustomer(t, "a");
    await put(t, "/v1/plans/pro", { name: "Pro" });
    await putCustomer(t, "b", { plan: "pro" });
    await record(t, [
      { customer: "a", values: { tokens_in: 40 } },
      { customer: "b", values: { tokens_out: 35 } },
      { customer: "never-put", values: { tokens_in: 20 } },
    ]);
    expect((await customerLimit(t, "a", "all")).used).toBe(95);
    expect((await customerLimit(t, "b", "all")).used).toBe(95);
    expect(outcome(await check(t, { customer: "c", values: { tokens_in: 5 } }), "all").remaining).toBe(0);
    expect((await check(t, { customer: "c", values: { tokens_in: 6 } })).code).toBe("LIMIT_EXCEEDED");
  });
});

describe("filter and group_by", () => {
  it("a filter limits only the matching events", async () => {
    const { t } = await freshServer();
    await putCustomer(t, "acme");
    await put(t, "/v1/limits/agent", { customer: "acme", ...quota, filter: { feature: "agent" } });
    await record(t, [
      { customer: "acme", values: { tokens_in: 80 }, dimensions: { feature: "agent" } },
      { customer: "acme", values: { tokens_in: 500 }, dimensions: { feature: "chat" } },
      { customer: "acme", values: { tokens_in: 500 } },
    ]);
    expect((await customerLimit(t, "acme", "agent")).used).toBe(80);
    const chat = await check(t, {
      customer: "acme",
      values: { tokens_in: 1000 },
      dimensions: { feature: "chat" },
    });
    expect(chat).toMatchObject({ allowed: true, limits: [] });
    const agent = await check(t, {
      customer: "acme",
      values: { tokens_in: 21 },
      dimensions: { feature: "agent" },
    });
    expect(agent).toMatchObject({ allowed: false, code: "LIMIT_EXCEEDED" });
    expect(outcome(agent, "agent")).toMatchObject({ allowed: false, remaining: 20 });
  });

  it("group_by keeps a separate counter per model", async () => {
    const { t } = await freshServer();
    await putCustomer(t, "acme");
    await put(t, "/v1/limits/per-model", { customer: "acme", ...quota, group_by: ["model"] });
    await record(t, [
      { customer: "acme", values: { tokens_in: 100 }, dimensions: { model: "gpt-4o" } },
      { customer: "acme", values: { tokens_in: 30 }, dimensions: { model: "claude" } },
    ]);
    const gpt = await check(t, {
      customer: "acme",
      values: { tokens_in: 1 },
      dimensions: { model: "gpt-4o" },
    });
    expect(gpt.code).toBe("LIMIT_EXCEEDED");
    expect(outcome(gpt, "per-model").group).toEqual({ model: "gpt-4o" });
    const claude = await check(t, {
      customer: "acme",
      values: { tokens_in: 70 },
      dimensions: { model: "claude" },
    });
    expect(claude.allowed).toBe(true);
    expect(outcome(claude, "per-model")).toMatchObject({ group: { model: "claude" }, remaining: 0 });
    const mini = await check(t, {
      customer: "acme",
      values: { tokens_in: 100 },
      dimensions: { model: "mini" },
    });
    expect(mini.allowed).toBe(true);

    const rows = (await customerLimits(t, "acme")).filter((l) => l.id === "per-model");
    const byModel = Object.fromEntries(rows.map((r) => [r.group?.model, [r.used, r.remaining, r.state]]));
    expect(byModel).toEqual({ "gpt-4o": [100, 0, "exceeded"], claude: [30, 70, "ok"] });
  });
});

describe("periods", () => {
  // Wednesday 2026-11-25 13:37:12Z: inside every calendar period, on no boundary.
  const S = Date.UTC(2026, 10, 25, 13, 37, 12);
  const cases = [
    { period: "hour", start: Date.UTC(2026, 10, 25, 13), next: Date.UTC(2026, 10, 25, 14) },
    { period: "day", start: Date.UTC(2026, 10, 25), next: Date.UTC(2026, 10, 26) },
    { period: "week", start: Date.UTC(2026, 10, 23), next: Date.UTC(2026, 10, 30) }, // Mondays
    { period: "month", start: Date.UTC(2026, 10, 1), next: Date.UTC(2026, 11, 1) },
  ];
  for (const { period, start, next } of cases) {
    it(`${period}: usage since ${iso(start)} counts; it resets at ${iso(next)}`, async () => {
      expect(new Date(start).getUTCDay() === 1 || period !== "week").toBe(true);
      const { t, clock } = await freshServer({ start: S });
      await putCustomer(t, "acme");
      await put(t, "/v1/limits/cap", { customer: "acme", meter: "tokens", amount: 100, period });
      await record(t, [
        { customer: "acme", values: { tokens_in: 90 }, timestamp: iso(start - 1000) }, // the period before
        { customer: "acme", values: { tokens_in: 60 }, timestamp: iso(start) },
        { customer: "acme", values: { tokens_in: 40 } }, // now
      ]);
      expect(await customerLimit(t, "acme", "cap")).toMatchObject({
        used: 100,
        remaining: 0,
        reset_at: iso(next),
        state: "exceeded",
      });
      const denied = await check(t, { customer: "acme", values: { tokens_in: 1 } });
      expect(denied.code).toBe("LIMIT_EXCEEDED");
      expect(outcome(denied, "cap")).toMatchObject({
        reset_at: iso(next),
        retry_after: Math.ceil((next - S) / 1000),
      });

      clock.set(next - 1);
      expect((await check(t, { customer: "acme", values: { tokens_in: 1 } })).allowed).toBe(false);
      clock.set(next);
      const fresh = await check(t, { customer: "acme", values: { tokens_in: 100 } });
      expect(fresh.allowed).toBe(true);
      expect(outcome(fresh, "cap").remaining).toBe(0);
      const state = await customerLimit(t, "acme", "cap");
      expect(state).toMatchObject({ used: 0, remaining: 100, percent_used: 0, state: "ok" });
      expect(Date.parse(state.reset_at!)).toBeGreaterThan(next);
    });
  }

  it("month: January 31 rolls over to February 1, and December to the next year", async () => {
    const { t, clock } = await freshServer({ start: Date.UTC(2027, 0, 31, 23, 59, 59) });
    await putCustomer(t, "acme");
    await put(t, "/v1/limits/cap", { customer: "acme", ...quota });
    await record(t, [{ customer: "acme", values: { tokens_in: 100 } }]);
    const denied = await check(t, { customer: "acme", values: { tokens_in: 1 } });
    expect(outcome(denied, "cap")).toMatchObject({ reset_at: "2027-02-01T00:00:00Z", retry_after: 1 });
    clock.set(Date.UTC(2027, 1, 1));
    expect((await check(t, { customer: "acme", values: { tokens_in: 100 } })).allowed).toBe(true);
    expect((await customerLimit(t, "acme", "cap")).reset_at).toBe("2027-03-01T00:00:00Z");

    clock.set(Date.UTC(2027, 11, 31, 12));
    await record(t, [{ customer: "acme", values: { tokens_in: 100 } }]);
    expect(await customerLimit(t, "acme", "cap")).toMatchObject({
      used: 100,
      reset_at: "2028-01-01T00:00:00Z",
    });
    clock.set(Date.UTC(2028, 0, 1));
    expect((await customerLimit(t, "acme", "cap")).used).toBe(0);
  });

  it("all_time never resets", async () => {
    const { t, clock } = await freshServer();
    await putCustomer(t, "acme");
    await put(t, "/v1/limits/cap", { customer: "acme", ...quota, period: "all_time" });
    await record(t, [
      { customer: "acme", values: { tokens_in: 60 }, timestamp: "2020-01-01T00:00:00Z" },
      { customer: "acme", values: { tokens_in: 40 } },
    ]);
    const denied = await check(t, { customer: "acme", values: { tokens_in: 1 } });
    expect(denied.code).toBe("LIMIT_EXCEEDED");
    expect(outcome(denied, "cap").reset_at).toBeNull();
    expect(outcome(denied, "cap").retry_after).toBeUndefined();
    clock.advance(400 * DAY);
    expect((await check(t, { customer: "acme", values: { tokens_in: 1 } })).code).toBe("LIMIT_EXCEEDED");
    expect(await customerLimit(t, "acme", "cap")).toMatchObject({ used: 100, reset_at: null });
  });

  it("rolling: usage ages out of the window", async () => {
    const { t, clock } = await freshServer();
    await putCustomer(t, "acme");
    await put(t, "/v1/limits/cap", { customer: "acme", ...quota, period: { rolling_seconds: 3600 } });
    await record(t, [{ customer: "acme", values: { tokens_in: 60 } }]);
    clock.advance(30 * MINUTE);
    await record(t, [{ customer: "acme", values: { tokens_in: 40 } }]);
    const denied = await check(t, { customer: "acme", values: { tokens_in: 1 } });
    expect(denied.code).toBe("LIMIT_EXCEEDED");
    const retry = outcome(denied, "cap").retry_after!;
    // The first 60 leave the window about an hour after they were recorded, not before.
    expect(retry * 1000).toBeGreaterThanOrEqual(30 * MINUTE);
    expect(retry * 1000).toBeLessThanOrEqual(32 * MINUTE);

    clock.set(T0 + 59 * MINUTE);
    expect((await customerLimit(t, "acme", "cap")).used).toBe(100);
    expect((await check(t, { customer: "acme", values: { tokens_in: 1 } })).allowed).toBe(false);
    clock.set(T0 + 30 * MINUTE + retry * 1000);
    expect((await customerLimit(t, "acme", "cap")).used).toBe(40);
    const admitted = await check(t, { customer: "acme", values: { tokens_in: 60 } });
    expect(admitted.allowed).toBe(true);
    expect((await check(t, { customer: "acme", values: { tokens_in: 61 } })).allowed).toBe(false);
    clock.set(T0 + 3 * HOUR);
    expect((await customerLimit(t, "acme", "cap")).used).toBe(0);
  });

  it("calendar periods start in the customer's time zone: Asia/Tokyo's day starts at 15:00Z", async () => {
    const { t, clock } = await freshServer({ start: Date.UTC(2026, 10, 23, 14, 0) }); // 23:00 JST
    await putCustomer(t, "tokyo", { timezone: "Asia/Tokyo" });
    await putCustomer(t, "london");
    for (const c of ["tokyo", "london"]) {
      await put(t, `/v1/limits/daily`, { customer: c, ...quota, period: "day" });
    }
    // Now is Nov 23 23:00 JST. 2026-11-22T14:30Z is Nov 22 23:30 JST (the JST day before);
    // 2026-11-22T15:30Z is Nov 23 00:30 JST (today in Tokyo, yesterday in UTC).
    await record(t, [
      { customer: "tokyo", values: { tokens_in: 50 }, timestamp: "2026-11-22T14:30:00Z" },
      { customer: "tokyo", values: { tokens_in: 60 }, timestamp: "2026-11-22T15:30:00Z" },
      { customer: "tokyo", values: { tokens_in: 40 } },
      { customer: "london", values: { tokens_in: 100 } },
    ]);
    expect(await customerLimit(t, "tokyo", "daily")).toMatchObject({
      used: 100,
      reset_at: "2026-11-23T15:00:00Z",
    });
    expect((await customerLimit(t, "london", "daily")).reset_at).toBe("2026-11-24T00:00:00Z");
    const denied = await check(t, { customer: "tokyo", values: { tokens_in: 1 } });
    expect(outcome(denied, "daily")).toMatchObject({ allowed: false, retry_after: 3600 });

    clock.set(Date.UTC(2026, 10, 23, 15) - 1);
    expect((await check(t, { customer: "tokyo", values: { tokens_in: 1 } })).allowed).toBe(false);
    clock.set(Date.UTC(2026, 10, 23, 15));
    expect((await check(t, { customer: "tokyo", values: { tokens_in: 100 } })).allowed).toBe(true);
    expect((await check(t, { customer: "london", values: { tokens_in: 1 } })).allowed).toBe(false);
    expect((await customerLimit(t, "tokyo", "daily")).reset_at).toBe("2026-11-24T15:00:00Z");
  });
});

describe("enforcement", () => {
  it("hard: denies with LIMIT_EXCEEDED and consumes nothing; a request that fits still passes", async () => {
    const { t } = await freshServer();
    await putCustomer(t, "acme");
    await put(t, "/v1/limits/cap", { customer: "acme", ...quota });
    await record(t, [{ customer: "acme", values: { tokens_in: 40 } }]);
    const held = await check(t, { customer: "acme", values: { tokens_in: 30 } }, { ttl_seconds: 600 });
    expect(held.reservation?.id).toBeTruthy();
    expect(await customerLimit(t, "acme", "cap")).toMatchObject({ used: 40, reserved: 30, remaining: 30 });

    const denied = await check(t, { customer: "acme", values: { tokens_in: 31 } }, { ttl_seconds: 600 });
    expect(denied.allowed).toBe(false);
    expect(denied.code).toBe("LIMIT_EXCEEDED");
    expect(denied.reservation).toBeUndefined();
    expect(outcome(denied, "cap")).toMatchObject({
      kind: "quota",
      allowed: false,
      exceeded: true,
      limit: 100,
      remaining: 30,
      reset_at: "2026-12-01T00:00:00Z",
      retry_after: (Date.UTC(2026, 11, 1) - T0) / 1000,
    });
    // Nothing was held or recorded by the denial.
    expect(await customerLimit(t, "acme", "cap")).toMatchObject({ used: 40, reserved: 30, remaining: 30 });
    const fits = await check(t, { customer: "acme", values: { tokens_in: 30 } }, { ttl_seconds: 600 });
    expect(fits.allowed).toBe(true);
    expect(outcome(fits, "cap").remaining).toBe(0);
    expect(await customerLimit(t, "acme", "cap")).toMatchObject({ reserved: 60, remaining: 0 });
  });

  it("soft: allows past the amount and flags exceeded", async () => {
    const { t } = await freshServer();
    await putCustomer(t, "acme");
    await put(t, "/v1/limits/cap", { customer: "acme", ...quota, enforcement: "soft" });
    await record(t, [{ customer: "acme", values: { tokens_in: 90 } }]);
    const within = await check(t, { customer: "acme", values: { tokens_in: 10 } });
    expect(outcome(within, "cap")).toMatchObject({ allowed: true, exceeded: false, enforcement: "soft" });
    const over = await check(t, { customer: "acme", values: { tokens_in: 11 } }, { ttl_seconds: 60 });
    expect(over.allowed).toBe(true);
    expect(over.code).toBeUndefined();
    expect(over.reservation?.id).toBeTruthy();
    expect(outcome(over, "cap")).toMatchObject({ allowed: true, exceeded: true, enforcement: "soft" });
    const commit = await t.api("POST", `/v1/reservations/${over.reservation!.id}/commit`, {});
    expect(commit.status).toBe(200);
    expect(await customerLimit(t, "acme", "cap")).toMatchObject({
      used: 101,
      remaining: 0,
      percent_used: 101,
      state: "exceeded",
      enforcement: "soft",
    });
  });

  it("shadow: never denies, reports what a hard limit would have done", async () => {
    const { t } = await freshServer();
    await putCustomer(t, "acme");
    await put(t, "/v1/limits/cap", { customer: "acme", ...quota, enforcement: "shadow" });
    await record(t, [{ customer: "acme", values: { tokens_in: 100 } }]);
    for (const tokens of [1, 1000, 0]) {
      const res = await check(t, { customer: "acme", values: { tokens_in: tokens } });
      expect(res.allowed).toBe(true);
      expect(outcome(res, "cap")).toMatchObject({ allowed: true, exceeded: true, enforcement: "shadow" });
    }
    const fine = await check(t, { customer: "other", values: { tokens_in: 5 } });
    expect(fine.limits).toEqual([]);
  });

  it("events recorded over POST /v1/events count, including those recorded before the limit existed", async () => {
    const { t } = await freshServer();
    await putCustomer(t, "acme");
    await record(t, [
      { customer: "acme", values: { tokens_in: 30, tokens_out: 20 } },
      { customer: "acme", values: { tokens_in: 5 }, type: "other.type" }, // not this meter
      { customer: "bob", values: { tokens_in: 70 } }, // another customer
    ]);
    await put(t, "/v1/limits/cap", { customer: "acme", ...quota });
    expect((await customerLimit(t, "acme", "cap")).used).toBe(50);
    await record(t, [{ customer: "acme", values: { tokens_out: 45 } }]);
    expect((await customerLimit(t, "acme", "cap")).used).toBe(95);
    expect((await check(t, { customer: "acme", values: { tokens_in: 5 } })).allowed).toBe(true);
    expect((await check(t, { customer: "acme", values: { tokens_in: 6 } })).code).toBe("LIMIT_EXCEEDED");
    // A duplicate event counts once.
    await record(t, [{ id: "dup", customer: "acme", values: { tokens_in: 5 } }]);
    const again = await t.api("POST", "/v1/events", {
      events: [{ id: "dup", type: "llm.completion", customer: "acme", values: { tokens_in: 5 } }],
    });
    expect(again.body).toEqual({ accepted: 0, duplicates: 1 });
    expect((await customerLimit(t, "acme", "cap")).used).toBe(100);
  });

  it("a redefined meter is counted by its new definition, like a meter query", async () => {
    const { t } = await freshServer();
    await putCustomer(t, "acme");
    await put(t, "/v1/limits/cap", { customer: "acme", ...quota, amount: 1000 });
    await record(t, [{ customer: "acme", values: { tokens_in: 100, tokens_out: 50 } }]);
    expect((await customerLimit(t, "acme", "cap")).used).toBe(150);
    await put(t, "/v1/meters/tokens", {
      event_type: "llm.completion",
      aggregation: "sum",
      value: "tokens_in",
    });
    const q = await t.api("GET", "/v1/meters/tokens/query?customer=acme");
    expect(q.body.data[0].value).toBe(100);
    expect((await customerLimit(t, "acme", "cap")).used).toBe(100);
    await record(t, [{ customer: "acme", values: { tokens_in: 10, tokens_out: 500 } }]);
    expect((await customerLimit(t, "acme", "cap")).used).toBe(110);
    expect(
      outcome(await check(t, { customer: "acme", values: { tokens_in: 1, tokens_out: 5000 } }), "cap"),
    ).toMatchObject({
      allowed: true,
      remaining: 889,
    });
  });

  it("two limits over the same counter (a hard cap and a soft warning) count each event and hold once", async () => {
    const { t } = await freshServer();
    await putCustomer(t, "acme");
    await put(t, "/v1/limits/cap", { customer: "acme", ...quota, amount: 1000 });
    await put(t, "/v1/limits/warn", { customer: "acme", ...quota, amount: 500, enforcement: "soft" });
    // Load the counters first, so that later events are added to them as they are recorded.
    expect((await customerLimit(t, "acme", "cap")).used).toBe(0);
    await record(t, [{ customer: "acme", values: { tokens_in: 300 } }]);
    await record(t, [{ customer: "acme", values: { tokens_in: 100 } }]);
    expect((await customerLimit(t, "acme", "cap")).used).toBe(400);
    expect((await customerLimit(t, "acme", "warn")).used).toBe(400);

    const r = await check(t, { customer: "acme", values: { tokens_in: 200 } }, { ttl_seconds: 60 });
    expect(outcome(r, "cap")).toMatchObject({ allowed: true, remaining: 400 });
    expect(outcome(r, "warn")).toMatchObject({ allowed: true, exceeded: true });
    expect(await customerLimit(t, "acme", "cap")).toMatchObject({ used: 400, reserved: 200, remaining: 400 });
    expect(await customerLimit(t, "acme", "warn")).toMatchObject({ reserved: 200, remaining: 0 });
    // 400 used + 200 held + 400 = the cap exactly.
    expect((await check(t, { customer: "acme", values: { tokens_in: 400 } })).allowed).toBe(true);
    expect((await check(t, { customer: "acme", values: { tokens_in: 401 } })).code).toBe("LIMIT_EXCEEDED");
    const c = await t.api("POST", `/v1/reservations/${r.reservation!.id}/commit`, {
      event: { values: { tokens_in: 150 } },
    });
    expect(c.status).toBe(200);
    expect(await customerLimit(t, "acme", "cap")).toMatchObject({ used: 550, reserved: 0, remaining: 450 });
  });

  it("a count meter counts events, and a check without an estimate is refused once the quota is used up", async () => {
    const { t } = await freshServer();
    await putCustomer(t, "acme");
    await put(t, "/v1/limits/tokens", { customer: "acme", ...quota });
    await put(t, "/v1/limits/calls", { customer: "acme", meter: "requests", amount: 3, period: "day" });
    await record(t, [{ customer: "acme", values: { tokens_in: 99 } }]);
    // No values: tokens are not estimated (cost 0), the count meter still costs 1.
    const noEstimate = await check(t, { customer: "acme" });
    expect(noEstimate.allowed).toBe(true);
    expect(outcome(noEstimate, "tokens").remaining).toBe(1);
    expect(outcome(noEstimate, "calls").remaining).toBe(1);
    await record(t, [{ customer: "acme", values: { tokens_in: 1 } }]);
    const refused = await check(t, { customer: "acme" });
    expect(refused.code).toBe("LIMIT_EXCEEDED");
    expect(outcome(refused, "tokens")).toMatchObject({ allowed: false, remaining: 0 });
    expect(outcome(refused, "calls")).toMatchObject({ allowed: true, remaining: 0 });
    // Without the token quota, the count quota alone decides: 2 calls recorded, 1 more fits.
    expect((await t.api("DELETE", "/v1/limits/tokens?customer=acme")).status).toBe(204);
    expect((await check(t, { customer: "acme" })).allowed).toBe(true);
    await record(t, [{ customer: "acme" }]);
    const full = await check(t, { customer: "acme" });
    expect(full.code).toBe("LIMIT_EXCEEDED");
    expect(outcome(full, "calls")).toMatchObject({ allowed: false, remaining: 0 });
  });
});
