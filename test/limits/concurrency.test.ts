import { afterAll, describe, expect, it } from "vitest";
import { expectError } from "../support/server.js";
import {
  check,
  closeAll,
  customerLimit,
  freshServer,
  iso,
  outcome,
  put,
  putCustomer,
  T0,
} from "./helpers.js";

afterAll(closeAll);

describe("concurrency limits", () => {
  it("a reserve takes a slot; CONCURRENCY_LIMIT_EXCEEDED when all are taken; release and commit give it back", async () => {
    const { t } = await freshServer();
    await putCustomer(t, "acme");
    await put(t, "/v1/concurrency-limits/par", { customer: "acme", scope: "customer", max: 2 });
    const a = await check(t, { customer: "acme" }, { ttl_seconds: 100 });
    expect(outcome(a, "par")).toMatchObject({ kind: "concurrency", allowed: true, limit: 2, remaining: 1 });
    const b = await check(t, { customer: "acme" }, { ttl_seconds: 50 });
    expect(outcome(b, "par").remaining).toBe(0);
    expect(await customerLimit(t, "acme", "par")).toMatchObject({ used: 2, remaining: 0, state: "exceeded" });

    const full = await check(t, { customer: "acme" }, { ttl_seconds: 100 });
    expect(full.allowed).toBe(false);
    expect(full.code).toBe("CONCURRENCY_LIMIT_EXCEEDED");
    expect(full.reservation).toBeUndefined();
    // The earliest slot to come back is b's, at its TTL.
    expect(outcome(full, "par")).toMatchObject({
      allowed: false,
      exceeded: true,
      remaining: 0,
      retry_after: 50,
    });
    expect(await customerLimit(t, "acme", "par")).toMatchObject({ used: 2 });

    // Another customer has its own slots only if the limit applies to it: this one is acme's.
    expect((await check(t, { customer: "bob" }, { ttl_seconds: 100 })).limits).toEqual([]);

    expect((await t.api("POST", `/v1/reservations/${a.reservation!.id}/release`)).status).toBe(200);
    const c = await check(t, { customer: "acme" }, { ttl_seconds: 100 });
    expect(c.allowed).toBe(true);
    expect((await check(t, { customer: "acme" }, { ttl_seconds: 100 })).code).toBe(
      "CONCURRENCY_LIMIT_EXCEEDED",
    );

    expect((await t.api("POST", `/v1/reservations/${b.reservation!.id}/commit`, {})).status).toBe(200);
    expect((await check(t, { customer: "acme" }, { ttl_seconds: 100 })).allowed).toBe(true);
    expect((await check(t, { customer: "acme" }, { ttl_seconds: 100 })).code).toBe(
      "CONCURRENCY_LIMIT_EXCEEDED",
    );
  });

  it("a slot frees itself at lease_ttl_seconds even while its reservation (and quota hold) lives on", async () => {
    const { t, clock } = await freshServer();
    await putCustomer(t, "acme");
    await put(t, "/v1/meters/tok", { event_type: "llm.completion", aggregation: "sum", value: "tokens" });
    await put(t, "/v1/limits/cap", { customer: "acme", meter: "tok", amount: 1000, period: "month" });
    await put(t, "/v1/concurrency-limits/par", {
      customer: "acme",
      scope: "customer",
      max: 1,
      lease_ttl_seconds: 30,
    });
    const a = await check(t, { customer: "acme", values: { tokens: 100 } }, { ttl_seconds: 600 });
    expect(a.allowed).toBe(true);
    const full = await check(t, { customer: "acme", values: { tokens: 100 } }, { ttl_seconds: 600 });
    expect(full.code).toBe("CONCURRENCY_LIMIT_EXCEEDED");
    expect(outcome(full, "par").retry_after).toBe(30);

    clock.advance(29_999);
    expect((await check(t, { customer: "acme" }, { ttl_seconds: 600 })).code).toBe(
      "CONCURRENCY_LIMIT_EXCEEDED",
    );
    clock.advance(1);
    // The lease is over: the slot is free, but a's quota hold still stands until its own TTL.
    const b = await check(t, { customer: "acme", values: { tokens: 100 } }, { ttl_seconds: 600 });
    expect(b.allowed).toBe(true);
    expect(outcome(b, "cap")).toMatchObject({ reserved: 100, remaining: 800 });
    // Committing a after its lease ended still records its usage.
    expect((await t.api("POST", `/v1/reservations/${a.reservation!.id}/commit`, {})).status).toBe(200);
    expect(await customerLimit(t, "acme", "cap")).toMatchObject({ used: 100, reserved: 100 });
  });

  it("a slot and its quota hold come back when the TTL passes, with no request but the next check", async () => {
    const { t, clock } = await freshServer();
    await putCustomer(t, "acme");
    await put(t, "/v1/concurrency-limits/par", { customer: "acme", scope: "customer", max: 1 });
    await put(t, "/v1/limits/cap", { customer: "acme", meter: "tokens", amount: 100, period: "month" });
    const r = await check(t, { customer: "acme", values: { tokens_in: 100 } }, { ttl_seconds: 120 });
    expect(r.allowed).toBe(true);
    const expiresAt = Date.parse(r.reservation!.expires_at);
    expect(r.reservation!.expires_at).toBe(iso(T0 + 120_000));

    clock.set(expiresAt - 1);
    const before = await check(t, { customer: "acme", values: { tokens_in: 1 } }, { ttl_seconds: 120 });
    expect(before.allowed).toBe(false);
    expect(outcome(before, "par").allowed).toBe(false);
    expect(outcome(before, "cap").allowed).toBe(false);

    clock.set(expiresAt + 1);
    const after = await check(t, { customer: "acme", values: { tokens_in: 100 } }, { ttl_seconds: 120 });
    expect(after.allowed).toBe(true);
    expect(outcome(after, "par").allowed).toBe(true);
    expect(outcome(after, "cap")).toMatchObject({ allowed: true, reserved: 0, remaining: 0 });
    const got = await t.api("GET", `/v1/reservations/${r.reservation!.id}`);
    expect(got.body.state).toBe("expired");
    expect(await customerLimit(t, "acme", "cap")).toMatchObject({ used: 0, reserved: 100 });
    expect(await customerLimit(t, "acme", "par")).toMatchObject({ used: 1 });
  });

  it("without ttl_seconds a reservation lasts the default 300 s", async () => {
    const { t, clock } = await freshServer();
    await put(t, "/v1/concurrency-limits/par", { scope: "workspace", max: 1 });
    const r = await check(t, { customer: "acme" }, {});
    expect(r.reservation!.expires_at).toBe(iso(T0 + 300_000));
    clock.advance(299_999);
    expect((await check(t, { customer: "bob" }, {})).code).toBe("CONCURRENCY_LIMIT_EXCEEDED");
    clock.advance(1);
    expect((await check(t, { customer: "bob" }, {})).allowed).toBe(true);
  });

  it("scope key counts slots per key, scope workspace across customers", async () => {
    const { t } = await freshServer();
    await put(t, "/v1/concurrency-limits/per-key", { scope: "key", max: 1 });
    await put(t, "/v1/concurrency-limits/ws", { scope: "workspace", max: 3 });
    const ok = (customer: string, key: string) =>
      check(t, { customer, dimensions: { key } }, { ttl_seconds: 60 }).then((r) => r.code ?? "ok");
    expect(await ok("a", "k1")).toBe("ok");
    expect(await ok("a", "k1")).toBe("CONCURRENCY_LIMIT_EXCEEDED");
    expect(await ok("a", "k2")).toBe("ok");
    expect(await ok("b", "k3")).toBe("ok");
    // Three slots of the workspace are taken, whichever key asks.
    const full = await check(t, { customer: "c", dimensions: { key: "k4" } }, { ttl_seconds: 60 });
    expect(full.code).toBe("CONCURRENCY_LIMIT_EXCEEDED");
    expect(outcome(full, "per-key").allowed).toBe(true);
    expect(outcome(full, "ws").allowed).toBe(false);
  });

  it("a check without reserve takes no slot", async () => {
    const { t } = await freshServer();
    await putCustomer(t, "acme");
    await put(t, "/v1/concurrency-limits/par", { customer: "acme", scope: "customer", max: 1 });
    for (let i = 0; i < 5; i++) expect((await check(t, { customer: "acme" })).allowed).toBe(true);
    expect((await customerLimit(t, "acme", "par")).used).toBe(0);
    expect((await check(t, { customer: "acme" }, { ttl_seconds: 10 })).allowed).toBe(true);
    expect((await customerLimit(t, "acme", "par")).used).toBe(1);
  });

  it("a denial by another limit takes no slot", async () => {
    const { t } = await freshServer();
    await putCustomer(t, "acme");
    await put(t, "/v1/concurrency-limits/par", { customer: "acme", scope: "customer", max: 1 });
    await put(t, "/v1/limits/cap", { customer: "acme", meter: "tokens", amount: 10, period: "month" });
    for (let i = 0; i < 3; i++) {
      const denied = await check(t, { customer: "acme", values: { tokens_in: 11 } }, { ttl_seconds: 60 });
      expect(denied.code).toBe("LIMIT_EXCEEDED");
      expect(outcome(denied, "par").allowed).toBe(true);
    }
    expect((await customerLimit(t, "acme", "par")).used).toBe(0);
    expect(
      (await check(t, { customer: "acme", values: { tokens_in: 10 } }, { ttl_seconds: 60 })).allowed,
    ).toBe(true);
  });

  it("plans carry concurrency limits; bad definitions are refused", async () => {
    const { t } = await freshServer();
    await put(t, "/v1/plans/pro", {
      name: "Pro",
      concurrency_limits: [{ id: "par", scope: "customer", max: 2, lease_ttl_seconds: 300 }],
    });
    await putCustomer(t, "a", { plan: "pro" });
    await putCustomer(t, "b", { plan: "pro" });
    for (const c of ["a", "b"]) {
      expect((await check(t, { customer: c }, { ttl_seconds: 60 })).allowed).toBe(true);
      expect((await check(t, { customer: c }, { ttl_seconds: 60 })).allowed).toBe(true);
      expect((await check(t, { customer: c }, { ttl_seconds: 60 })).code).toBe("CONCURRENCY_LIMIT_EXCEEDED");
    }
    const bad = async (body: Record<string, unknown>, field: string) => {
      const err = expectError(await t.api("PUT", "/v1/concurrency-limits/x", body), 400, "INVALID_REQUEST");
      expect(err.details?.field).toBe(field);
    };
    await bad({ scope: "customer", max: 0 }, "max");
    await bad({ scope: "customer" }, "max");
    await bad({ scope: "galaxy", max: 1 }, "scope");
    await bad({ scope: "customer", max: 1, lease_ttl_seconds: 0 }, "lease_ttl_seconds");
    await bad({ scope: "customer", max: 1, plan: "pro", customer: "a" }, "plan");
  });
});
