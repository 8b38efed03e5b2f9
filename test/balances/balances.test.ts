import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock } from "@tollgate/core";
import { afterAll, describe, expect, it } from "vitest";
import {
  check,
  closeAll,
  DAY,
  freshServer,
  HOUR,
  iso,
  MINUTE,
  put,
  putCustomer,
  record,
  TYPE,
} from "../limits/helpers.js";
import { expectError, startTestServer } from "../support/server.js";

afterAll(closeAll);

type T = Awaited<ReturnType<typeof freshServer>>["t"];

async function credit(t: T, customer: string, body: Record<string, unknown>) {
  return t.api("POST", `/v1/customers/${customer}/balance/credits`, body);
}
async function balance(t: T, customer: string) {
  const res = await t.api("GET", `/v1/customers/${customer}/balance`);
  expect(res.status, res.text).toBe(200);
  return res.body;
}

describe("balances", () => {
  it("credits and debits apply once per idempotency key; the balance is derived from the ledger", async () => {
    const { t } = await freshServer();
    await putCustomer(t, "acme");
    const c1 = await credit(t, "acme", { amount: 1000, idempotency_key: "grant-1" });
    expect(c1.status, c1.text).toBe(201);
    expect(c1.body).toMatchObject({ balance: 1000, available: 1000, held: 0, replayed: false });
    const again = await credit(t, "acme", { amount: 1000, idempotency_key: "grant-1" });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ balance: 1000, replayed: true });
    // The same key with another amount is a conflict, and changes nothing.
    expectError(await credit(t, "acme", { amount: 5, idempotency_key: "grant-1" }), 409, "CONFLICT");
    const d = await t.api("POST", "/v1/customers/acme/balance/debits", {
      amount: 300,
      idempotency_key: "d-1",
    });
    expect(d.status, d.text).toBe(201);
    const d2 = await t.api("POST", "/v1/customers/acme/balance/debits", {
      amount: 300,
      idempotency_key: "d-1",
    });
    expect(d2.body.replayed).toBe(true);
    expect(await balance(t, "acme")).toMatchObject({
      balance: 700,
      available: 700,
      credited: 1000,
      debited: 300,
    });
    // A debit past the minimum (0) is 402 and changes nothing.
    const over = await t.api("POST", "/v1/customers/acme/balance/debits", {
      amount: 701,
      idempotency_key: "d-2",
    });
    const err = expectError(over, 402, "INSUFFICIENT_BALANCE");
    expect(err.details).toMatchObject({ amount: 701, available: 700, shortfall: 1 });
    expect((await balance(t, "acme")).balance).toBe(700);
    // Overdraft: a negative minimum lets it through, down to the minimum.
    const min = await t.api("PUT", "/v1/customers/acme/balance", { minimum_balance: -100 });
    expect(min.status, min.text).toBe(200);
    expect(min.body.minimum_balance).toBe(-100);
    const od = await t.api("POST", "/v1/customers/acme/balance/debits", {
      amount: 800,
      idempotency_key: "d-2",
    });
    expect(od.status, od.text).toBe(201);
    expect(od.body).toMatchObject({ balance: -100, available: -100, overdraft: 100 });
    expectError(
      await t.api("POST", "/v1/customers/acme/balance/debits", { amount: 1, idempotency_key: "d-3" }),
      402,
      "INSUFFICIENT_BALANCE",
    );
    const tx = await t.api("GET", "/v1/customers/acme/balance/transactions?limit=2");
    expect(tx.body.data.map((e: { kind: string }) => e.kind)).toEqual(["credit", "debit"]);
    const rest = await t.api("GET", `/v1/customers/acme/balance/transactions?cursor=${tx.body.next_cursor}`);
    expect(rest.body.data.map((e: { kind: string }) => e.kind)).toEqual(["minimum_balance", "debit"]);
    expectError(await t.api("GET", "/v1/customers/nobody/balance"), 404, "NOT_FOUND");
  });

  it("grants expiring soonest are spent first, then by priority; unspent credits expire", async () => {
    const { t, clock } = await freshServer();
    await putCustomer(t, "g");
    const now = clock.now();
    await credit(t, "g", { amount: 100, idempotency_key: "never" });
    await credit(t, "g", { amount: 100, idempotency_key: "late", expires_at: iso(now + 10 * DAY) });
    await credit(t, "g", {
      amount: 100,
      idempotency_key: "soon-low",
      expires_at: iso(now + DAY),
      priority: 90,
    });
    await credit(t, "g", {
      amount: 100,
      idempotency_key: "soon-high",
      expires_at: iso(now + DAY),
      priority: 10,
    });
    await t.api("POST", "/v1/customers/g/balance/debits", { amount: 150, idempotency_key: "x" });
    const v = await balance(t, "g");
    const remaining = Object.fromEntries(
      v.grants.map((g: { id: string; remaining: number }) => [g.id, g.remaining]),
    );
    expect(remaining).toEqual({ never: 100, late: 100, "soon-low": 50, "soon-high": 0 });
    clock.advance(DAY);
    const after = await balance(t, "g");
    expect(after).toMatchObject({ balance: 200, expired: 50, credited: 400, debited: 150 });
    // balance = credited − debited − expired
    expect(after.balance).toBe(after.credited - after.debited - after.expired);
  });

  it("debit rules charge recorded usage, fractions carried: 1 credit per 1,000 tokens", async () => {
    const { t } = await freshServer();
    await putCustomer(t, "r");
    await credit(t, "r", { amount: 100, idempotency_key: "c" });
    const rule = await t.api("PUT", "/v1/balance-rules/per-1k-tokens", {
      meter: "tokens",
      credits_per_unit: 1,
      unit: 1000,
    });
    expect(rule.status, rule.text).toBe(201);
    // Three events of 700 tokens: 2,100 tokens → 2 credits, 100 carried.
    for (let i = 0; i < 3; i++)
      await record(t, [{ customer: "r", values: { tokens_in: 500, tokens_out: 200 } }]);
    expect((await balance(t, "r")).balance).toBe(98);
    // Usage is debited even past the minimum (it already happened).
    await record(t, [{ customer: "r", values: { tokens_in: 200_000 } }]);
    expect((await balance(t, "r")).balance).toBe(-102);
    // A duplicate event is not charged twice.
    const body = { events: [{ id: "dup-1", type: TYPE, customer: "r", values: { tokens_in: 5000 } }] };
    await t.api("POST", "/v1/events", body);
    await t.api("POST", "/v1/events", body);
    expect((await balance(t, "r")).balance).toBe(-107);
  });

  it("a debit rule on cost: 1 credit per $0.001 of spend", async () => {
    const { t } = await freshServer();
    await putCustomer(t, "p");
    await credit(t, "p", { amount: 10_000, idempotency_key: "c" });
    await t.api("PUT", "/v1/prices/m", { input: "3", output: "15", effective_from: "2020-01-01T00:00:00Z" });
    await put(t, "/v1/meters/spend", { event_type: TYPE, aggregation: "sum", value: "cost" });
    const rule = await t.api("PUT", "/v1/balance-rules/per-mill", {
      meter: "spend",
      credits_per_unit: 1,
      unit: "0.001",
    });
    expect(rule.body).toMatchObject({ unit: "0.001000", credits_per_unit: 1 });
    // 10,000 in × $3/1M + 2,000 out × $15/1M = $0.03 + $0.03 = $0.06 → 60 credits.
    await record(t, [
      { customer: "p", values: { tokens_in: 10_000, tokens_out: 2_000 }, dimensions: { model: "m" } },
    ]);
    expect((await balance(t, "p")).balance).toBe(9_940);
  });

  it("check with reserve holds the estimate; commit debits the actual and releases; release and TTL return it", async () => {
    const { t, clock } = await freshServer();
    await putCustomer(t, "h");
    await credit(t, "h", { amount: 50, idempotency_key: "c" });
    await put(t, "/v1/balance-rules/per-request", { meter: "requests", credits_per_unit: 10 });
    const a = await check(t, { customer: "h" }, { ttl_seconds: 60 });
    expect(a.allowed).toBe(true);
    const b = a.limits.find((l) => l.kind === "balance")!;
    expect(b).toMatchObject({ id: "balance", allowed: true });
    expect(await balance(t, "h")).toMatchObject({ balance: 50, held: 10, available: 40 });
    // Commit: the request meter charges 10 by the rule, the hold goes.
    const c = await t.api("POST", `/v1/reservations/${a.reservation!.id}/commit`, {});
    expect(c.status, c.text).toBe(200);
    expect(await balance(t, "h")).toMatchObject({ balance: 40, held: 0, available: 40 });
    // Release returns the hold.
    const r = await check(t, { customer: "h" }, { ttl_seconds: 60 });
    expect((await balance(t, "h")).available).toBe(30);
    await t.api("POST", `/v1/reservations/${r.reservation!.id}/release`, {});
    expect((await balance(t, "h")).available).toBe(40);
    // TTL: a vanished client's hold expires by itself.
    await check(t, { customer: "h" }, { ttl_seconds: 60 });
    expect((await balance(t, "h")).available).toBe(30);
    clock.advance(61_000);
    expect((await balance(t, "h")).available).toBe(40);
    // Without reserve a check only asks; with too little left it is denied 402-style in the answer.
    for (let i = 0; i < 4; i++) await check(t, { customer: "h" }, { ttl_seconds: 600 });
    const denied = await check(t, { customer: "h" }, { ttl_seconds: 600 });
    expect(denied.allowed).toBe(false);
    expect(denied.code).toBe("INSUFFICIENT_BALANCE");
    expect(await balance(t, "h")).toMatchObject({ available: 0, held: 40 });
    clock.advance(MINUTE * 11);
  });

  it("200 concurrent reserve calls against a balance with room for 50: exactly 50 succeed", async () => {
    const { t } = await freshServer();
    await putCustomer(t, "busy");
    await credit(t, "busy", { amount: 50, idempotency_key: "c" });
    await put(t, "/v1/balance-rules/per-request", { meter: "requests", credits_per_unit: 1 });
    const answers = await Promise.all(
      Array.from({ length: 200 }, () =>
        t.api("POST", "/v1/check", {
          event: { type: TYPE, customer: "busy" },
          reserve: { ttl_seconds: 120 },
        }),
      ),
    );
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(answers.filter((a) => a.body.allowed).length).toBe(50);
    for (const a of answers.filter((x) => !x.body.allowed)) expect(a.body.code).toBe("INSUFFICIENT_BALANCE");
    expect(await balance(t, "busy")).toMatchObject({ balance: 50, held: 50, available: 0 });
  });
});

describe("balances across a restart", () => {
  it("credits, debits, usage and holds come back exactly", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "tollgate-balance-"));
    const clock = new ManualClock(Date.UTC(2026, 10, 23, 10));
    try {
      let t = await startTestServer({ clock, dataDir });
      await t.api("PUT", "/v1/meters/requests", { event_type: TYPE, aggregation: "count" });
      await t.api("PUT", "/v1/customers/k", { name: "k" });
      await t.api("PUT", "/v1/balance-rules/r", { meter: "requests", credits_per_unit: 3 });
      await t.api("POST", "/v1/customers/k/balance/credits", {
        amount: 100,
        idempotency_key: "c1",
        expires_at: iso(clock.now() + 2 * HOUR),
      });
      await t.api("POST", "/v1/customers/k/balance/credits", { amount: 20, idempotency_key: "c2" });
      await t.api("POST", "/v1/events", { events: [{ id: "e1", type: TYPE, customer: "k" }] });
      const held = await t.api("POST", "/v1/check", {
        event: { type: TYPE, customer: "k" },
        reserve: { ttl_seconds: 3600 },
      });
      expect(held.body.allowed).toBe(true);
      const before = (await t.api("GET", "/v1/customers/k/balance")).body;
      expect(before).toMatchObject({ balance: 117, held: 3, available: 114 });
      await t.close();

      t = await startTestServer({ clock, dataDir });
      expect((await t.api("GET", "/v1/customers/k/balance")).body).toEqual(before);
      // The hold still commits after the restart; a retried credit still applies once.
      const c = await t.api("POST", `/v1/reservations/${held.body.reservation.id}/commit`, {});
      expect(c.status, c.text).toBe(200);
      const again = await t.api("POST", "/v1/customers/k/balance/credits", {
        amount: 20,
        idempotency_key: "c2",
      });
      expect(again.body.replayed).toBe(true);
      expect((await t.api("GET", "/v1/customers/k/balance")).body).toMatchObject({ balance: 114, held: 0 });
      clock.advance(2 * HOUR);
      expect((await t.api("GET", "/v1/customers/k/balance")).body).toMatchObject({
        balance: 20,
        expired: 94,
      });
      await t.close();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
