/**
 * Feature gates and model classes per tier: POST /v1/check refuses what a plan does not include with
 * FEATURE_NOT_INCLUDED (403) before any counter moves; POST /v1/events keeps such usage and flags it.
 */
import { afterAll, describe, expect, it } from "vitest";
import {
  check,
  closeAll,
  customerLimit,
  freshServer,
  outcome,
  put,
  putCustomer,
  record,
  TYPE,
} from "../limits/helpers.js";
import type { TestServer } from "../support/server.js";

afterAll(closeAll);

const CLASSES = {
  models: {
    "gpt-4o-mini": "small",
    "claude-3-5-haiku*": "small",
    "gpt-4o": "medium",
    "gpt-4o-2024*": "medium",
    "claude-3-5-sonnet*": "large",
    "o1*": "premium",
  },
};

/** The seeds' tier table: which model classes and features each plan includes. */
const TIERS = [
  { plan: "free", classes: ["small"], features: { agent_keys: false, exports: false } },
  { plan: "pro", classes: ["small", "medium"], features: { agent_keys: true, exports: false } },
  { plan: "team", classes: ["small", "medium", "large"], features: { agent_keys: true, exports: true } },
  {
    plan: "enterprise",
    classes: ["small", "medium", "large", "premium"],
    features: { agent_keys: true, exports: true },
  },
] as const;

/** A model per class, as clients send them (any letter case, dated snapshots). */
const MODEL_OF = {
  small: "GPT-4o-mini",
  medium: "gpt-4o",
  large: "claude-3-5-sonnet-20241022",
  premium: "o1-preview",
};

async function tiers() {
  const env = await freshServer();
  const { t } = env;
  const res = await t.api("PUT", "/v1/settings/model-classes", CLASSES);
  expect(res.status, res.text).toBe(200);
  for (const tier of TIERS) {
    await put(t, `/v1/plans/${tier.plan}`, {
      name: tier.plan,
      features: tier.features,
      model_classes: tier.classes,
      limits: [{ id: "monthly-tokens", meter: "tokens", amount: 1_000_000, period: "month" }],
      rate_limits: [{ id: "rpm", scope: "customer", limit: 100, window_seconds: 60 }],
    });
    await putCustomer(t, `c-${tier.plan}`, { plan: tier.plan });
  }
  return env;
}

const checkRaw = (t: TestServer, customer: string, model: string, extra: Record<string, unknown> = {}) =>
  t.api("POST", "/v1/check", {
    event: { type: TYPE, customer, values: { tokens_in: 1000, tokens_out: 200 }, dimensions: { model } },
    ...extra,
  });

describe("model classes and feature gates, per tier", () => {
  const rows = TIERS.flatMap((tier) =>
    (Object.keys(MODEL_OF) as (keyof typeof MODEL_OF)[]).map((cls) => ({
      plan: tier.plan,
      cls,
      allowed: (tier.classes as readonly string[]).includes(cls),
    })),
  );

  it.each(rows)("$plan plan, $cls model: allowed=$allowed", async ({ plan, cls, allowed }) => {
    const { t } = await tiers();
    const customer = `c-${plan}`;
    const res = await checkRaw(t, customer, MODEL_OF[cls], { reserve: { ttl_seconds: 60 } });
    if (allowed) {
      expect(res.status, res.text).toBe(200);
      expect(res.body.allowed).toBe(true);
      expect(res.body.reservation).toBeDefined();
      expect((await customerLimit(t, customer, "monthly-tokens")).reserved).toBe(1200);
      return;
    }
    expect(res.status, res.text).toBe(403);
    expect(res.body.error).toMatchObject({
      code: "FEATURE_NOT_INCLUDED",
      status: 403,
      details: { plan, model_class: cls, model: MODEL_OF[cls] },
    });
    // Nothing moved: no hold, no rate-limit attempt, no usage.
    const quota = await customerLimit(t, customer, "monthly-tokens");
    expect(quota).toMatchObject({ used: 0, reserved: 0 });
    expect((await customerLimit(t, customer, "rpm")).used).toBe(0);
  });

  it.each(TIERS)("$plan plan: features", async (tier) => {
    const { t } = await tiers();
    for (const [feature, on] of Object.entries(tier.features)) {
      const res = await checkRaw(t, `c-${tier.plan}`, "gpt-4o-mini", { features: [feature] });
      if (on) {
        expect(res.status, res.text).toBe(200);
        expect(res.body.allowed).toBe(true);
      } else {
        expect(res.status, res.text).toBe(403);
        expect(res.body.error).toMatchObject({ code: "FEATURE_NOT_INCLUDED", details: { feature } });
      }
    }
    // A feature the plan never mentions is not included.
    const unknown = await checkRaw(t, `c-${tier.plan}`, "gpt-4o-mini", { features: ["teleport"] });
    expect(unknown.status).toBe(403);
    expect((await customerLimit(t, `c-${tier.plan}`, "rpm")).used).toBe(
      Object.values(tier.features).filter(Boolean).length,
    );
  });

  it("Free denies gpt-4o with FEATURE_NOT_INCLUDED and records nothing; Pro allows it and records it", async () => {
    const { t } = await tiers();
    const free = await checkRaw(t, "c-free", "gpt-4o", { reserve: { ttl_seconds: 60 } });
    expect(free.status).toBe(403);
    expect(free.body.error.code).toBe("FEATURE_NOT_INCLUDED");
    // No reservation exists to commit, and the meter has nothing for the customer.
    const none = await t.api("GET", "/v1/meters/tokens/query?customer=c-free");
    expect(none.body.data).toEqual([]);

    const pro = await checkRaw(t, "c-pro", "gpt-4o", { reserve: { ttl_seconds: 60 } });
    expect(pro.status).toBe(200);
    const commit = await t.api("POST", `/v1/reservations/${pro.body.reservation.id}/commit`, {
      event: { values: { tokens_in: 1000, tokens_out: 200 } },
    });
    expect(commit.status, commit.text).toBe(200);
    const used = await t.api("GET", "/v1/meters/tokens/query?customer=c-pro&group_by=model_class");
    expect(used.body.data).toEqual([
      expect.objectContaining({ value: 1200, groups: { model_class: "medium" } }),
    ]);
  });

  it("a customer without a plan, and a model with no class, are not gated", async () => {
    const { t } = await tiers();
    await putCustomer(t, "nobody");
    expect((await checkRaw(t, "nobody", "o1-preview", { features: ["agent_keys"] })).status).toBe(200);
    expect((await checkRaw(t, "c-free", "some-local-llama")).status).toBe(200);
    // A default class makes unknown models gated like the rest.
    await put(t, "/v1/settings/model-classes", { ...CLASSES, default_class: "large" });
    expect((await checkRaw(t, "c-free", "some-local-llama")).status).toBe(403);
    expect((await checkRaw(t, "c-team", "some-local-llama")).status).toBe(200);
  });

  it("a client-sent model_class does not get around the gate", async () => {
    const { t } = await tiers();
    const res = await t.api("POST", "/v1/check", {
      event: {
        type: TYPE,
        customer: "c-free",
        values: { tokens_in: 1 },
        dimensions: { model: "gpt-4o", model_class: "small" },
      },
    });
    expect(res.status).toBe(403);
  });
});

describe("recorded events: model_class is derived; excluded usage is kept and flagged", () => {
  it("POST /v1/events accepts a Free customer's gpt-4o event, flags it, and counts it", async () => {
    const { t } = await tiers();
    const res = await t.api("POST", "/v1/events", {
      events: [
        {
          id: "e1",
          type: TYPE,
          customer: "c-free",
          values: { tokens_in: 100 },
          dimensions: { model: "gpt-4o-mini" },
        },
        {
          id: "e2",
          type: TYPE,
          customer: "c-free",
          values: { tokens_in: 300 },
          dimensions: { model: "gpt-4o" },
        },
      ],
    });
    expect(res.status, res.text).toBe(202);
    expect(res.body).toEqual({
      accepted: 2,
      duplicates: 0,
      flagged: [{ index: 1, id: "e2", code: "FEATURE_NOT_INCLUDED", model_class: "medium" }],
    });
    const byClass = await t.api(
      "GET",
      "/v1/meters/tokens/query?customer=c-free&group_by=model_class,entitlement",
    );
    expect(byClass.body.data).toEqual([
      expect.objectContaining({
        value: 300,
        groups: { model_class: "medium", entitlement: "model_class_not_included" },
      }),
      expect.objectContaining({ value: 100, groups: { model_class: "small", entitlement: null } }),
    ]);
    expect((await customerLimit(t, "c-free", "monthly-tokens")).used).toBe(400);
    // Reports group by the derived dimensions too.
    const report = await t.api("GET", "/v1/usage?customer=c-free&group_by=model_class,entitlement");
    expect(report.status, report.text).toBe(200);
    expect(
      report.body.data.map((r: Record<string, unknown>) => [r.model_class, r.entitlement, r.tokens_total]),
    ).toEqual(
      expect.arrayContaining([
        ["medium", "model_class_not_included", 300],
        ["small", null, 100],
      ]),
    );
    // A retry is the same event (the derived dimensions are not part of its identity).
    const again = await t.api("POST", "/v1/events", {
      events: [
        {
          id: "e2",
          type: TYPE,
          customer: "c-free",
          values: { tokens_in: 300 },
          dimensions: { model: "gpt-4o" },
        },
      ],
    });
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ accepted: 0, duplicates: 1 });
  });

  it("limits filter and group by model_class like any dimension", async () => {
    const { t } = await tiers();
    await put(t, "/v1/limits/medium-cap", {
      customer: "c-pro",
      meter: "tokens",
      amount: 2000,
      period: "month",
      filter: { model_class: "medium" },
    });
    await put(t, "/v1/limits/per-class", {
      customer: "c-pro",
      meter: "tokens",
      amount: 5000,
      period: "month",
      group_by: ["model_class"],
    });
    await record(t, [
      { customer: "c-pro", values: { tokens_in: 1500 }, dimensions: { model: "gpt-4o" } },
      { customer: "c-pro", values: { tokens_in: 4000 }, dimensions: { model: "gpt-4o-mini" } },
    ]);
    expect((await customerLimit(t, "c-pro", "medium-cap")).used).toBe(1500);
    expect((await customerLimit(t, "c-pro", "per-class", { model_class: "small" })).used).toBe(4000);
    const denied = await check(t, {
      customer: "c-pro",
      values: { tokens_in: 600 },
      dimensions: { model: "gpt-4o" },
    });
    expect(denied.allowed).toBe(false);
    expect(outcome(denied, "medium-cap").allowed).toBe(false);
    const small = await check(t, {
      customer: "c-pro",
      values: { tokens_in: 600 },
      dimensions: { model: "gpt-4o-mini" },
    });
    expect(small.allowed).toBe(true);
    expect(outcome(small, "per-class").group).toEqual({ model_class: "small" });
  });
});

describe("GET /v1/customers/{id}/entitlements", () => {
  it("lists features, classes (with access per known class) and included usage", async () => {
    const { t } = await tiers();
    await put(t, "/v1/plans/pro", {
      name: "pro",
      features: { agent_keys: true },
      model_classes: ["small", "medium"],
      overage: [{ meter: "tokens", included: 1_000_000, unit_price: "0.00001" }],
    });
    const res = await t.api("GET", "/v1/customers/c-pro/entitlements");
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({
      customer: "c-pro",
      plan: "pro",
      gated: true,
      features: { agent_keys: true },
      model_classes: ["medium", "small"],
      model_class_access: { small: true, medium: true, large: false, premium: false },
      overage: [{ meter: "tokens", included: 1_000_000, unit_price: "0.00001" }],
      raises: [],
    });
    const plan = await t.api("GET", "/v1/plans/pro");
    expect(plan.body).toMatchObject({ features: { agent_keys: true }, model_classes: ["medium", "small"] });
    expect((await t.api("GET", "/v1/customers/nope/entitlements")).status).toBe(404);
    expect((await t.api("GET", "/v1/settings/model-classes")).body).toEqual({
      models: Object.fromEntries(Object.entries(CLASSES.models).map(([m, c]) => [m.toLowerCase(), c])),
      default_class: null,
    });
  });

  it("refuses bad terms with 400 naming the field, and changes nothing", async () => {
    const { t } = await tiers();
    const bad = [
      [{ overage: [{ meter: "nope", included: 1, unit_price: "1" }] }, "overage[0].meter"],
      [{ overage: [{ meter: "peak", included: 1, unit_price: "1" }] }, "overage[0].meter"],
      [{ overage: [{ meter: "tokens", included: "1.5", unit_price: "1" }] }, "overage[0].included"],
      [
        { overage: [{ meter: "tokens", included: 1, unit_price: "0.0000000000001" }] },
        "overage[0].unit_price",
      ],
      [
        {
          overage: [
            { meter: "tokens", included: 1, unit_price: "1" },
            { meter: "tokens", included: 2, unit_price: "1" },
          ],
        },
        "overage[1].meter",
      ],
    ] as const;
    for (const [body, field] of bad) {
      const res = await t.api("PUT", "/v1/plans/free", { name: "free", ...body });
      expect(res.status, res.text).toBe(400);
      expect(res.body.error.details.field, res.text).toContain(field.split(".")[0]);
    }
    expect((await t.api("GET", "/v1/plans/free")).body.overage).toEqual([]);
    const classes = await t.api("PUT", "/v1/settings/model-classes", { models: { "gpt*4o": "x" } });
    expect(classes.status).toBe(400);
  });
});
