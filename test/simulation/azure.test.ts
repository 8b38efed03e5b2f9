// What-if simulation (issue #11) over the Azure LLM trace 2023: a proposed per-customer tokens/minute
// fixed-window limit replayed through POST /v1/simulations denies exactly what an independent
// reference computes here, and the replay changes nothing of the live state.
import { createHash } from "node:crypto";
import { ManualClock, type Store } from "@tollgate/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readTrace, type TraceRow } from "../support/azure.js";
import { startTestServer, type TestServer } from "../support/server.js";

const CUSTOMERS = ["c0", "c1", "c2", "c3"];
const TPM = 60_000;
const WINDOW_MS = 60_000;

interface Row extends TraceRow {
  id: string;
  customer: string;
  model: string;
}

const rows: Row[] = [
  ...readTrace("conv").map((r, i) => ({ ...r, id: `conv_${i}`, model: "gpt-4o" })),
  ...readTrace("code").map((r, i) => ({ ...r, id: `code_${i}`, model: "gpt-4o-mini" })),
].map((r, i) => ({ ...r, customer: CUSTOMERS[i % CUSTOMERS.length]! }));
const first = Math.min(...rows.map((r) => r.timestamp));
const last = Math.max(...rows.map((r) => r.timestamp));
const FROM = new Date(Math.floor(first / 3_600_000) * 3_600_000).toISOString();
const TO = new Date(Math.ceil((last + 1) / 3_600_000) * 3_600_000).toISOString();

/**
 * The reference: per customer, the events in stored order (timestamp, then the order they were
 * sent), a counter per window of 60 s since the epoch; an event is denied when it does not fit.
 */
function referenceDenied(): Map<string, number> {
  const byCustomer = new Map<string, Row[]>();
  for (const r of rows) byCustomer.set(r.customer, [...(byCustomer.get(r.customer) ?? []), r]);
  const denied = new Map<string, number>();
  for (const [customer, list] of byCustomer) {
    const sorted = [...list].sort((a, b) => a.timestamp - b.timestamp); // stable: ties keep send order
    let window = -1;
    let used = 0;
    let n = 0;
    for (const r of sorted) {
      const tokens = r.contextTokens + r.generatedTokens;
      const w = Math.floor(r.timestamp / WINDOW_MS);
      if (w !== window) {
        window = w;
        used = 0;
      }
      if (used + tokens > TPM) n++;
      else used += tokens;
    }
    denied.set(customer, n);
  }
  return denied;
}

/** Everything a simulation must not change: events, definitions, ledgers, limit states, balances. */
async function liveState(t: TestServer, store: Store) {
  const events = createHash("sha256");
  let count = 0;
  await store.scanEvents("default", {}, (e, seq) => {
    count++;
    events.update(JSON.stringify([seq, e]));
  });
  const records: Record<string, unknown> = {};
  for (const kind of [
    "customer",
    "plan",
    "meter",
    "limit",
    "rate_limit",
    "price",
    "balance_rule",
    "audit",
  ] as const) {
    records[kind] = await store.listRecords("default", kind, { limit: 1000 });
  }
  const perCustomer: Record<string, unknown> = {};
  for (const c of CUSTOMERS) {
    perCustomer[c] = {
      limits: (await t.api("GET", `/v1/customers/${c}/limits`)).body,
      balance: (await t.api("GET", `/v1/customers/${c}/balance`)).body,
      ledger: await store.loadLedger("default", c),
    };
  }
  const alerts = (await t.api("GET", "/v1/alerts?limit=100")).body;
  return { count, events: events.digest("hex"), records, perCustomer, alerts };
}

async function waitDone(t: TestServer, id: string) {
  for (;;) {
    const res = await t.api("GET", `/v1/simulations/${id}`);
    expect(res.status).toBe(200);
    if (res.body.status === "done" || res.body.status === "failed") return res.body;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("simulation over the Azure trace", () => {
  let t: TestServer;
  const clock = new ManualClock(Date.parse(TO) + 3_600_000);

  beforeAll(async () => {
    // Load shedding off: the test machine is shared, and its delays are not what is tested here.
    t = await startTestServer({ clock, apiRateLimit: null, overload: { maxEventLoopDelayMs: 600_000 } });
    const put = async (path: string, body: unknown) => {
      const res = await t.api("PUT", path, body);
      expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
    };
    await put("/v1/meters/tokens", {
      event_type: "llm.completion",
      aggregation: "sum",
      value: ["tokens_in", "tokens_out"],
    });
    await put("/v1/plans/pro", {
      name: "Pro",
      limits: [{ id: "monthly_tokens", meter: "tokens", amount: 10_000_000_000, period: "month" }],
    });
    for (const c of CUSTOMERS) await put(`/v1/customers/${c}`, { plan: "pro" });
    for (let i = 0; i < rows.length; i += 1000) {
      const res = await t.api("POST", "/v1/events", {
        events: rows.slice(i, i + 1000).map((r) => ({
          id: r.id,
          type: "llm.completion",
          customer: r.customer,
          timestamp: r.iso,
          values: {
            tokens_in: r.contextTokens,
            tokens_out: r.generatedTokens,
            tokens: r.contextTokens + r.generatedTokens,
          },
          dimensions: { model: r.model },
        })),
      });
      expect(res.status, JSON.stringify(res.body)).toBe(202);
    }
  }, 180_000);

  afterAll(async () => {
    await t?.close();
  });

  it("denies what the fixed-window reference denies, and leaves the live state as it was", async () => {
    const store = t.server.engine.store;
    const before = await liveState(t, store);
    expect(before.count).toBe(rows.length);

    const res = await t.api("POST", "/v1/simulations", {
      from: FROM,
      to: TO,
      config: {
        plans: {
          pro: {
            name: "Pro",
            limits: [
              { id: "monthly_tokens", meter: "tokens", amount: 10_000_000_000, period: "month" },
              {
                id: "hourly_tokens",
                meter: "tokens",
                amount: 2_000_000,
                period: "hour",
                enforcement: "soft",
              },
            ],
            rate_limits: [
              {
                id: "tpm",
                scope: "customer",
                value: "tokens",
                limit: TPM,
                window_seconds: 60,
                algorithm: "fixed_window",
              },
            ],
          },
        },
        prices: { "gpt-4o": { input: "1", output: "2" } },
      },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.headers.get("location")).toBe(`/v1/simulations/${res.body.id}`);
    const done = await waitDone(t, res.body.id);
    expect(done.status, JSON.stringify(done.error)).toBe("done");
    const result = done.result;

    const expected = referenceDenied();
    let expectedTotal = 0;
    for (const c of CUSTOMERS) {
      const found = result.customers.find((x: { customer: string }) => x.customer === c);
      const tpm = found.limits.find(
        (l: { limit: string; kind: string }) => l.limit === "tpm" && l.kind === "rate",
      );
      expect(tpm.denied, c).toBe(expected.get(c));
      expect(found.denied, c).toBe(expected.get(c)); // only the rate limit is hard enough to deny
      expect(found.events).toBe(rows.filter((r) => r.customer === c).length);
      expectedTotal += expected.get(c)!;
      if (tpm.denied > 0) {
        expect(tpm.first_hit_at).toMatch(/^2023-11-16T/);
        expect(tpm.peak_percent).toBeGreaterThan(90);
      }
    }
    expect(expectedTotal).toBeGreaterThan(0);
    expect(result.totals.denied).toBe(expectedTotal);
    expect(result.totals.events).toBe(rows.length);
    expect(result.totals.allowed).toBe(rows.length - expectedTotal);

    // The soft hourly quota: past 80/95/100 % an alert per level, hour and customer; overage counted.
    const hourly = result.customers.flatMap((c: { limits: { limit: string }[] }) =>
      c.limits.filter((l) => l.limit === "hourly_tokens"),
    );
    expect(hourly.some((l: { overage: number }) => l.overage > 0)).toBe(true);
    expect(hourly.some((l: { alerts: { warning: number } }) => l.alerts.warning > 0)).toBe(true);
    expect(result.totals.alerts).toBeGreaterThan(0);
    expect(result.alerts[0].type).toMatch(/^limit\./);

    // Proposed prices: gpt-4o at 1/2 USD per 1M tokens; the live events had no price of their own.
    expect(result.totals.cost_proposed).not.toBe(result.totals.cost_actual);

    // CSV of the same result.
    const csv = await t.api("GET", `/v1/simulations/${res.body.id}?format=csv`);
    expect(csv.status).toBe(200);
    expect(csv.headers.get("content-type")).toMatch(/^text\/csv/);
    expect(csv.text.split("\r\n")[0]).toMatch(/^customer,events,allowed,denied/);

    const after = await liveState(t, store);
    expect(after).toEqual(before);
  }, 180_000);

  it("answers 400 for a bad proposal and 404 for an unknown simulation, changing nothing", async () => {
    const bad = await t.api("POST", "/v1/simulations", {
      from: FROM,
      to: TO,
      config: { rate_limits: [{ id: "x", scope: "customer", limit: -1, window_seconds: 60 }] },
    });
    expect(bad.status, JSON.stringify(bad.body)).toBe(400);
    expect(bad.body.error.code).toBe("INVALID_REQUEST");
    const unknownMeter = await t.api("POST", "/v1/simulations", {
      from: FROM,
      to: TO,
      config: { limits: [{ id: "x", meter: "nope", amount: 1, period: "day" }] },
    });
    expect(unknownMeter.status).toBe(400);
    expect(unknownMeter.body.error.details.field).toMatch(/^config\.limits\.x/);
    const range = await t.api("POST", "/v1/simulations", { from: TO, to: FROM, config: {} });
    expect(range.status).toBe(400);
    const section = await t.api("POST", "/v1/simulations", { from: FROM, to: TO, config: { proxy: {} } });
    expect(section.status).toBe(400);
    expect((await t.api("GET", "/v1/simulations/sim_nope")).status).toBe(404);
  });

  it("is for admins, and a workspace sees only its own simulations", async () => {
    const started = await t.api("POST", "/v1/simulations", { from: FROM, to: TO, config: {} });
    expect(started.status).toBe(202);
    const done = await waitDone(t, started.body.id);
    expect(done.result.totals.denied).toBe(0); // the live plan alone denies nothing
    const service = await t.api("POST", "/v1/api-keys", { name: "svc", role: "service" });
    expect(service.status).toBe(201);
    const asService = { key: service.body.key as string };
    expect(
      (await t.api("POST", "/v1/simulations", { from: FROM, to: TO, config: {} }, asService)).status,
    ).toBe(403);
    expect((await t.api("GET", `/v1/simulations/${started.body.id}`, undefined, asService)).status).toBe(403);
    const other = await t.server.engine.bootstrap("other");
    const asOther = { key: other.adminKey! };
    expect((await t.api("GET", `/v1/simulations/${started.body.id}`, undefined, asOther)).status).toBe(404);
    // Another workspace's replay sees none of this one's events.
    const empty = await t.api("POST", "/v1/simulations", { from: FROM, to: TO, config: {} }, asOther);
    expect(empty.status).toBe(202);
    const emptyDone = await waitDone(
      { ...t, api: (m, p, b) => t.api(m, p, b, asOther) } as TestServer,
      empty.body.id,
    );
    expect(emptyDone.result.totals.events).toBe(0);
  });
});
