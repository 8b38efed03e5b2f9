import { Webhook } from "standardwebhooks";
import { afterEach, describe, expect, it } from "vitest";
import { expectError } from "../support/server.js";
import {
  createWebhook,
  DAY,
  defineQuota,
  deliveries,
  Receiver,
  startTollgate,
  type Tollgate,
  use,
} from "./helpers.js";

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

async function tollgate(): Promise<Tollgate> {
  const t = await startTollgate();
  open.push(t);
  return t;
}
async function receiver() {
  const r = await new Receiver().start();
  open.push({ close: () => r.stop() });
  return r;
}

describe("webhook endpoints API", () => {
  it("creates, lists, gets and deletes endpoints; the secret is shown at creation only", async () => {
    const t = await tollgate();
    const created = await t.api("POST", "/v1/webhooks", {
      url: "https://example.com/hooks",
      events: ["limit.exceeded", "limit.warning"],
      description: "ops",
    });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({
      id: expect.stringMatching(/^wh_/),
      url: "https://example.com/hooks",
      events: ["limit.warning", "limit.exceeded"],
      description: "ops",
      secret: expect.stringMatching(/^whsec_/),
      created_at: "2026-11-23T10:00:00Z",
    });
    // The secret is a valid Standard Webhooks key.
    expect(() => new Webhook(created.body.secret)).not.toThrow();
    const list = await t.api("GET", "/v1/webhooks");
    expect(list.body.data).toEqual([expect.objectContaining({ id: created.body.id })]);
    expect(list.body.data[0].secret).toBeUndefined();
    const one = await t.api("GET", `/v1/webhooks/${created.body.id}`);
    expect(one.status).toBe(200);
    expect(one.body.secret).toBeUndefined();
    expect((await t.api("DELETE", `/v1/webhooks/${created.body.id}`)).status).toBe(204);
    expectError(await t.api("GET", `/v1/webhooks/${created.body.id}`), 404, "NOT_FOUND");
    expectError(await t.api("DELETE", `/v1/webhooks/${created.body.id}`), 404, "NOT_FOUND");
  });

  it("refuses bad endpoints with the offending field, and changes nothing", async () => {
    const t = await tollgate();
    const cases: [unknown, string][] = [
      [{ url: "ftp://example.com/x", events: ["limit.warning"] }, "url"],
      [{ url: "not a url", events: ["limit.warning"] }, "url"],
      [{ url: "https://user:pw@example.com/x", events: ["limit.warning"] }, "url"],
      [{ url: "https://example.com/x", events: [] }, "events"],
      [{ url: "https://example.com/x", events: ["limit.nope"] }, "events[0]"],
      [{ url: "https://example.com/x", events: ["limit.warning", "limit.warning"] }, "events"],
      [{ url: "https://example.com/x", events: ["limit.warning"], secret: "whsec_x" }, "secret"],
      [{ events: ["limit.warning"] }, "url"],
    ];
    for (const [body, field] of cases) {
      const err = expectError(await t.api("POST", "/v1/webhooks", body), 400, "INVALID_REQUEST");
      expect(err.details?.field, JSON.stringify(body)).toBe(field);
    }
    expect((await t.api("GET", "/v1/webhooks")).body.data).toEqual([]);
    expectError(await t.api("GET", "/v1/alerts?type=nope"), 400, "INVALID_REQUEST");
    expectError(await t.api("GET", "/v1/alerts?cursor=abc"), 400, "INVALID_REQUEST");
    expectError(await t.api("GET", "/v1/webhooks/wh_nope/deliveries"), 404, "NOT_FOUND");
  });

  it("service keys read alerts but cannot manage webhooks; other workspaces see nothing", async () => {
    const t = await tollgate();
    const hook = await createWebhook(t, "https://example.com/h", ["limit.warning"]);
    const service = await t.api("POST", "/v1/api-keys", { name: "svc", role: "service" });
    const key = service.body.key as string;
    expect((await t.api("GET", "/v1/alerts", undefined, key)).status).toBe(200);
    expectError(
      await t.api("POST", "/v1/webhooks", { url: "https://e.com", events: ["limit.warning"] }, key),
      403,
      "FORBIDDEN",
    );
    expectError(await t.api("GET", "/v1/webhooks", undefined, key), 403, "FORBIDDEN");
    const other = await t.server.engine.bootstrap("other");
    const otherKey = other.adminKey!;
    expectError(await t.api("GET", `/v1/webhooks/${hook.id}`, undefined, otherKey), 404, "NOT_FOUND");
    expectError(await t.api("DELETE", `/v1/webhooks/${hook.id}`, undefined, otherKey), 404, "NOT_FOUND");
    expectError(await t.api("POST", `/v1/webhooks/${hook.id}/rotate-secret`, {}, otherKey), 404, "NOT_FOUND");
    expect((await t.api("GET", "/v1/webhooks", undefined, otherKey)).body.data).toEqual([]);
  });

  it("rotating the secret signs with the new one and, for the grace period, the old one too", async () => {
    const t = await tollgate();
    const r = await receiver();
    const hook = await createWebhook(t, r.url, ["limit.warning", "limit.exceeded"]);
    const rotated = await t.api("POST", `/v1/webhooks/${hook.id}/rotate-secret`); // no body: defaults
    expect(rotated.status, rotated.text).toBe(200);
    expect(rotated.body.secret).not.toBe(hook.secret);
    expect(rotated.body.previous_secret_expires_at).toBe("2026-11-24T10:00:00Z");
    r.secret = rotated.body.secret;
    await defineQuota(t, 100);
    await use(t, 80);
    await t.deliver();
    expect(r.received).toHaveLength(1);
    const got = r.received[0]!;
    expect(got.headers["webhook-signature"]!.split(" ")).toHaveLength(2);
    expect(() => new Webhook(hook.secret).verify(got.body, got.headers)).not.toThrow();

    // Retired at once: only the new secret signs.
    const again = await t.api("POST", `/v1/webhooks/${hook.id}/rotate-secret`, {
      previous_secret_ttl_seconds: 0,
    });
    r.secret = again.body.secret;
    await use(t, 20);
    await t.deliver();
    expect(r.received).toHaveLength(2);
    expect(r.received[1]!.headers["webhook-signature"]!.split(" ")).toHaveLength(1);
    expect(() =>
      new Webhook(rotated.body.secret).verify(r.received[1]!.body, r.received[1]!.headers),
    ).toThrow();
    expectError(
      await t.api("POST", `/v1/webhooks/${hook.id}/rotate-secret`, { previous_secret_ttl_seconds: -1 }),
      400,
      "INVALID_REQUEST",
    );
  });

  it("deleting an endpoint cancels its pending deliveries; endpoints only get the types they subscribe to", async () => {
    const t = await tollgate();
    const down = await receiver();
    const up = await receiver();
    await down.stop();
    const a = await createWebhook(t, down.url, ["limit.warning", "limit.exceeded"]);
    const b = await createWebhook(t, up.url, ["limit.exceeded"]);
    up.secret = b.secret;
    await defineQuota(t, 100);
    await use(t, 100);
    await t.deliver();
    expect((await deliveries(t, a.id)).map((d) => d.state)).toEqual(["pending", "pending"]);
    expect(up.received.map((x) => x.payload.type)).toEqual(["limit.exceeded"]);
    await t.api("DELETE", `/v1/webhooks/${a.id}`);
    t.clock.advance(DAY);
    await t.deliver();
    const rows = t.server.store.db
      .prepare("SELECT state FROM webhook_deliveries WHERE webhook_id = ?")
      .pluck()
      .all(a.id);
    expect(rows).toEqual(["cancelled", "cancelled"]);
    expectError(await t.api("POST", `/v1/webhooks/${b.id}/deliveries/dlv_nope/redeliver`), 404, "NOT_FOUND");
  });
});

describe("alerts", () => {
  it("GET /v1/alerts filters by type and customer and pages newest first", async () => {
    const t = await tollgate();
    await defineQuota(t, 100);
    await t.api("PUT", "/v1/customers/bob", { name: "Bob" });
    await t.api("PUT", "/v1/limits/monthly", {
      customer: "bob",
      meter: "tokens",
      amount: 10,
      period: "month",
    });
    await use(t, 100);
    await use(t, 10, "bob");
    await t.server.engine.alerts.settle();
    const all = await t.api("GET", "/v1/alerts?limit=2");
    expect(all.body.data).toHaveLength(2);
    expect(all.body.next_cursor).toBeDefined();
    const rest = await t.api("GET", `/v1/alerts?limit=100&cursor=${all.body.next_cursor}`);
    expect(rest.body.data).toHaveLength(4);
    expect(rest.body.next_cursor).toBeUndefined();
    const ids = [...all.body.data, ...rest.body.data].map((a: { id: string }) => a.id);
    expect(new Set(ids).size).toBe(6);
    const bob = await t.api("GET", "/v1/alerts?customer=bob");
    expect(bob.body.data.map((a: { type: string }) => a.type)).toEqual([
      "limit.exceeded",
      "limit.critical",
      "limit.warning",
    ]);
    const exceeded = await t.api("GET", "/v1/alerts?type=limit.exceeded");
    expect(exceeded.body.data.map((a: { customer: string }) => a.customer).sort()).toEqual(["acme", "bob"]);
  });

  it("grouped and workspace-wide limits: one alert per group; a workspace limit's alert has no customer", async () => {
    const t = await tollgate();
    await defineQuota(t, 100, { group_by: ["model"], thresholds: [50] });
    await t.api("PUT", "/v1/limits/everyone", {
      meter: "tokens",
      amount: 1000,
      period: "day",
      thresholds: [],
    });
    await use(t, 60, "acme", { model: "a" });
    await use(t, 60, "acme", { model: "b" });
    await use(t, 900, "zed", { model: "a" });
    await t.server.engine.alerts.settle();
    const alerts = (await t.api("GET", "/v1/alerts")).body.data as {
      type: string;
      customer: string | null;
      data: { group: Record<string, string>; limit: { id: string }; threshold: number };
    }[];
    const grouped = alerts.filter((a) => a.data.limit.id === "monthly");
    expect(grouped.map((a) => [a.type, a.data.group.model, a.data.threshold]).sort()).toEqual([
      ["limit.warning", "a", 50],
      ["limit.warning", "b", 50],
    ]);
    const everyone = alerts.filter((a) => a.data.limit.id === "everyone");
    expect(everyone).toHaveLength(1);
    expect(everyone[0]).toMatchObject({ type: "limit.exceeded", customer: null });
  });

  it("a soft limit that a check lets past its amount raises limit.exceeded (trigger: check), once", async () => {
    const t = await tollgate();
    await defineQuota(t, 100, { enforcement: "soft" });
    await use(t, 50);
    const check = await t.api("POST", "/v1/check", {
      event: { type: "llm.completion", customer: "acme", values: { tokens_in: 80 } },
    });
    expect(check.body.allowed).toBe(true);
    await t.server.engine.alerts.settle();
    const alerts = (await t.api("GET", "/v1/alerts?type=limit.exceeded")).body.data;
    expect(alerts).toHaveLength(1);
    expect(alerts[0].data).toMatchObject({ trigger: "check", used: 50 });
    await use(t, 80);
    await t.server.engine.alerts.settle();
    expect((await t.api("GET", "/v1/alerts?type=limit.exceeded")).body.data).toHaveLength(1);
  });

  it("balance.low: raised through the alert center once per customer, level and episode, and delivered", async () => {
    const t = await tollgate();
    const r = await receiver();
    const hook = await createWebhook(t, r.url, ["balance.low"]);
    r.secret = hook.secret;
    const alerts = t.server.engine.alerts;
    expect(await alerts.balanceLow("default", { customer: "acme", available: 500, level: 100 })).toBe(false);
    expect(
      await alerts.balanceLow("default", { customer: "acme", available: 80, level: 100, episode: "g1" }),
    ).toBe(true);
    expect(
      await alerts.balanceLow("default", { customer: "acme", available: 20, level: 100, episode: "g1" }),
    ).toBe(false);
    expect(
      await alerts.balanceLow("default", { customer: "acme", available: 20, level: 100, episode: "g2" }),
    ).toBe(true);
    await t.deliver();
    expect(r.received.map((x) => x.payload)).toEqual([
      expect.objectContaining({ type: "balance.low", data: { customer: "acme", available: 80, level: 100 } }),
      expect.objectContaining({ type: "balance.low", data: { customer: "acme", available: 20, level: 100 } }),
    ]);
  });

  it("balance.low from the balances: available credits falling under the configured level, once per top-up", async () => {
    const t = await tollgate();
    t.server.engine.alerts.balanceLowLevel = 100;
    await t.api("PUT", "/v1/customers/acme", { name: "Acme" });
    const credit = (amount: number, key: string) =>
      t.api("POST", "/v1/customers/acme/balance/credits", { amount, idempotency_key: key });
    const debit = (amount: number, key: string) =>
      t.api("POST", "/v1/customers/acme/balance/debits", { amount, idempotency_key: key });
    expect((await credit(150, "c1")).status).toBeLessThan(300);
    expect((await debit(40, "d1")).status).toBeLessThan(300); // 110 left: above the level
    await t.server.engine.alerts.settle();
    expect((await t.api("GET", "/v1/alerts?type=balance.low")).body.data).toEqual([]);
    expect((await debit(20, "d2")).status).toBeLessThan(300); // 90
    expect((await debit(30, "d3")).status).toBeLessThan(300); // 60: still the same episode
    await t.server.engine.alerts.settle();
    let low = (await t.api("GET", "/v1/alerts?type=balance.low")).body.data;
    expect(low).toHaveLength(1);
    expect(low[0]).toMatchObject({ customer: "acme", data: { customer: "acme", available: 90, level: 100 } });
    // A top-up re-arms it: the next fall under the level is a new alert.
    expect((await credit(100, "c2")).status).toBeLessThan(300); // 160
    expect((await debit(100, "d4")).status).toBeLessThan(300); // 60
    await t.server.engine.alerts.settle();
    low = (await t.api("GET", "/v1/alerts?type=balance.low")).body.data;
    expect(low.map((a: { data: { available: number } }) => a.data.available)).toEqual([60, 90]);
  });

  it("usage.summary: daily and weekly per customer with usage, once, after a restart too", async () => {
    const t0 = await startTollgate();
    let t = t0;
    open.push({ close: () => t.close() });
    const r = await receiver();
    const hook = await createWebhook(t, r.url, ["usage.summary"]);
    r.secret = hook.secret;
    await defineQuota(t, 1_000_000);
    await t.api("PUT", "/v1/meters/requests", { event_type: "llm.completion", aggregation: "count" });
    // Sunday 2026-11-29: acme twice, bob once.
    t.clock.set(Date.UTC(2026, 10, 29, 12));
    await use(t, 100);
    await use(t, 50);
    await use(t, 7, "bob");
    await t.deliver(); // today's summaries are not due yet
    const before = r.received.length;
    // Monday 00:00:30: Sunday's daily and last week's weekly summaries are due.
    t.clock.set(Date.UTC(2026, 10, 30, 0, 0, 30));
    await t.deliver();
    await t.deliver();
    const summaries = r.received.slice(before).map((x) => x.payload.data);
    const daily = summaries.filter((s) => s.period === "day");
    const weekly = summaries.filter((s) => s.period === "week");
    expect(daily).toEqual([
      {
        customer: "acme",
        period: "day",
        window_start: "2026-11-29T00:00:00Z",
        window_end: "2026-11-30T00:00:00Z",
        events: 2,
        values: { tokens_in: 150 },
        meters: { requests: 2, tokens: 150 },
      },
      expect.objectContaining({ customer: "bob", events: 1, meters: { requests: 1, tokens: 7 } }),
    ]);
    expect(weekly.map((s) => [s.customer, s.window_start, s.window_end])).toEqual([
      ["acme", "2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z"],
      ["bob", "2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z"],
    ]);
    t = await t.restart();
    await t.deliver();
    expect(r.received.length - before).toBe(4);
  });
});
