/**
 * Temporary raises: a customer's own limit with `expires_at` overrides its plan's limit of the same
 * id until exactly that instant, then the plan's value is back without anyone acting (ManualClock).
 * Every limit change is audited: which key changed which limit, when, before and after.
 */
import { afterAll, describe, expect, it } from "vitest";
import {
  check,
  closeAll,
  customerLimit,
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
} from "../limits/helpers.js";
import type { TestServer } from "../support/server.js";

afterAll(closeAll);

async function proCustomer() {
  const env = await freshServer();
  const { t } = env;
  await put(t, "/v1/plans/pro", {
    name: "Pro",
    limits: [{ id: "monthly-tokens", meter: "tokens", amount: 1000, period: "month" }],
    rate_limits: [{ id: "rpm", scope: "customer", limit: 2, window_seconds: 60, algorithm: "fixed_window" }],
  });
  await putCustomer(t, "acme", { plan: "pro" });
  await putCustomer(t, "other", { plan: "pro" });
  return env;
}

const adminKeyId = async (t: TestServer) => {
  const keys = await t.api("GET", "/v1/api-keys");
  const admin = keys.body.data.find((k: { role: string }) => k.role === "admin");
  expect(admin).toBeDefined();
  return admin.id as string;
};

describe("temporary raises", () => {
  it("a week's raise of a monthly cap applies until exactly expires_at, then the plan's value is back", async () => {
    const { t, clock } = await proCustomer();
    await record(t, [{ customer: "acme", values: { tokens_in: 900 } }]);
    const expiresAt = T0 + 7 * DAY;
    const raised = await put(t, "/v1/limits/monthly-tokens", {
      customer: "acme",
      meter: "tokens",
      amount: 5000,
      period: "month",
      expires_at: iso(expiresAt),
    });
    expect(raised.status).toBe(201);
    expect(raised.body).toMatchObject({ customer: "acme", amount: 5000, expires_at: iso(expiresAt) });

    // The raise counts the usage already recorded under the plan's limit (same meter and period).
    expect(await customerLimit(t, "acme", "monthly-tokens")).toMatchObject({ limit: 5000, used: 900 });
    const during = await check(t, { customer: "acme", values: { tokens_in: 3000 } });
    expect(outcome(during, "monthly-tokens")).toMatchObject({ allowed: true, limit: 5000, remaining: 1100 });
    // Another customer of the plan is not raised.
    expect((await customerLimit(t, "other", "monthly-tokens")).limit).toBe(1000);

    clock.set(expiresAt - 1);
    expect((await customerLimit(t, "acme", "monthly-tokens")).limit).toBe(5000);
    expect((await check(t, { customer: "acme", values: { tokens_in: 3000 } })).allowed).toBe(true);

    clock.set(expiresAt);
    expect(await customerLimit(t, "acme", "monthly-tokens")).toMatchObject({ limit: 1000, used: 900 });
    const after = await check(t, { customer: "acme", values: { tokens_in: 3000 } });
    expect(after.allowed).toBe(false);
    expect(after.code).toBe("LIMIT_EXCEEDED");
    expect(outcome(after, "monthly-tokens")).toMatchObject({ allowed: false, limit: 1000, remaining: 100 });
    // The expired raise stays listed (with its expires_at) until deleted; it no longer applies.
    const listed = await t.api("GET", "/v1/limits?customer=acme");
    expect(listed.body.data).toEqual([
      expect.objectContaining({ id: "monthly-tokens", expires_at: iso(expiresAt) }),
    ]);
    const ent = await t.api("GET", "/v1/customers/acme/entitlements");
    expect(ent.body.raises).toEqual([]);
  });

  it("the first check after expiry sees the plan's value even though nothing was redefined (the book is cached)", async () => {
    const { t, clock } = await proCustomer();
    // Warm every cache with checks under the raise.
    await put(t, "/v1/limits/monthly-tokens", {
      customer: "acme",
      meter: "tokens",
      amount: 3000,
      period: "month",
      expires_at: iso(T0 + HOUR),
    });
    for (let i = 0; i < 3; i++) {
      const c = await check(t, { customer: "acme", values: { tokens_in: 10 } });
      expect(outcome(c, "monthly-tokens").limit).toBe(3000);
    }
    clock.set(T0 + HOUR);
    const c = await check(t, { customer: "acme", values: { tokens_in: 10 } });
    expect(outcome(c, "monthly-tokens").limit).toBe(1000);
  });

  it("a reservation admitted under the raise is committed after expiry; the counters are shared", async () => {
    const { t, clock } = await proCustomer();
    await put(t, "/v1/limits/monthly-tokens", {
      customer: "acme",
      meter: "tokens",
      amount: 3000,
      period: "month",
      expires_at: iso(T0 + 10 * MINUTE),
    });
    const held = await check(t, { customer: "acme", values: { tokens_in: 2500 } }, { ttl_seconds: 3600 });
    expect(held.allowed).toBe(true);
    clock.set(T0 + 10 * MINUTE);
    // Under the plan's 1000 the held 2500 already exceeds: the state shows it, and new checks are denied.
    expect(await customerLimit(t, "acme", "monthly-tokens")).toMatchObject({
      limit: 1000,
      reserved: 2500,
      state: "exceeded",
    });
    expect((await check(t, { customer: "acme", values: { tokens_in: 1 } })).allowed).toBe(false);
    const commit = await t.api("POST", `/v1/reservations/${held.reservation!.id}/commit`, {
      event: { values: { tokens_in: 2000 } },
    });
    expect(commit.status, commit.text).toBe(200);
    expect(await customerLimit(t, "acme", "monthly-tokens")).toMatchObject({ used: 2000, reserved: 0 });
  });

  it("a raise of a rate limit expires the same way", async () => {
    const { t, clock } = await proCustomer();
    await put(t, "/v1/rate-limits/rpm", {
      customer: "acme",
      scope: "customer",
      limit: 5,
      window_seconds: 60,
      algorithm: "fixed_window",
      expires_at: iso(T0 + 2 * MINUTE),
    });
    for (let i = 0; i < 5; i++) expect((await check(t, { customer: "acme" })).allowed).toBe(true);
    expect((await check(t, { customer: "acme" })).allowed).toBe(false);
    clock.set(T0 + 2 * MINUTE);
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push((await check(t, { customer: "acme" })).allowed);
    expect(answers).toEqual([true, true, false]);
  });

  it("refuses expires_at in the past or on a plan's or the workspace's limit (400, nothing changes)", async () => {
    const { t } = await proCustomer();
    const cases = [
      { customer: "acme", expires_at: iso(T0) },
      { customer: "acme", expires_at: iso(T0 - DAY) },
      { plan: "pro", expires_at: iso(T0 + DAY) },
      { expires_at: iso(T0 + DAY) },
      { customer: "acme", expires_at: "next week" },
    ];
    for (const c of cases) {
      const res = await t.api("PUT", "/v1/limits/monthly-tokens", {
        meter: "tokens",
        amount: 9999,
        period: "month",
        ...c,
      });
      expect(res.status, res.text).toBe(400);
      expect(res.body.error.details.field).toBe("expires_at");
    }
    const inline = await t.api("PUT", "/v1/plans/pro", {
      name: "Pro",
      limits: [{ id: "x", meter: "tokens", amount: 1, period: "month", expires_at: iso(T0 + DAY) }],
    });
    expect(inline.status).toBe(400);
    expect(inline.body.error.details.field).toBe("limits[0].expires_at");
    expect((await customerLimit(t, "acme", "monthly-tokens")).limit).toBe(1000);
    expect((await t.api("GET", "/v1/limits?customer=acme")).body.data).toEqual([]);
  });
});

describe("audit of limit changes", () => {
  it("records which key changed which limit, when, before and after; GET /v1/audit filters", async () => {
    const { t, clock } = await proCustomer();
    const keyId = await adminKeyId(t);
    const raise = {
      customer: "acme",
      meter: "tokens",
      amount: 5000,
      period: "month",
      expires_at: iso(T0 + DAY),
    };
    await put(t, "/v1/limits/monthly-tokens", raise);
    clock.set(T0 + MINUTE);
    // A second admin key changes it again.
    const second = await t.api("POST", "/v1/api-keys", { name: "ops", role: "admin" });
    expect(second.status).toBe(201);
    const again = await t.api(
      "PUT",
      "/v1/limits/monthly-tokens",
      { ...raise, amount: 8000 },
      { key: second.body.key },
    );
    expect(again.status).toBe(200);
    clock.set(T0 + 2 * MINUTE);
    expect((await t.api("DELETE", "/v1/limits/monthly-tokens?customer=acme")).status).toBe(204);
    await put(t, "/v1/limits/ws-cap", { meter: "tokens", amount: 1, period: "day" });

    const res = await t.api("GET", "/v1/audit?customer=acme");
    expect(res.status, res.text).toBe(200);
    expect(res.body.data).toMatchObject([
      {
        kind: "limit.put",
        at: iso(T0),
        key_id: keyId,
        limit_kind: "limit",
        limit: "monthly-tokens",
        customer: "acme",
        before: null,
        after: { amount: 5000, expires_at: iso(T0 + DAY) },
      },
      {
        kind: "limit.put",
        at: iso(T0 + MINUTE),
        key_id: second.body.id,
        before: { amount: 5000 },
        after: { amount: 8000 },
      },
      {
        kind: "limit.delete",
        at: iso(T0 + 2 * MINUTE),
        key_id: keyId,
        before: { amount: 8000 },
        after: null,
      },
    ]);
    const all = await t.api("GET", "/v1/audit?kind=limit.put");
    expect(all.body.data.map((e: { limit: string }) => e.limit)).toEqual([
      "monthly-tokens",
      "monthly-tokens",
      "ws-cap",
    ]);
    // Plans' inline limits and terms are audited too.
    const plans = await t.api("GET", "/v1/audit?kind=plan.put&plan=pro");
    expect(plans.body.data).toMatchObject([
      { kind: "plan.put", plan: "pro", key_id: keyId, before: null, after: { limits: [{ amount: 1000 }] } },
    ]);
    // Service keys cannot read the audit log.
    const service = await t.api("POST", "/v1/api-keys", { name: "svc", role: "service" });
    expect((await t.api("GET", "/v1/audit", undefined, { key: service.body.key })).status).toBe(403);
  });
});
