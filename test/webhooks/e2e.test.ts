import { afterEach, describe, expect, it } from "vitest";
import { createWebhook, defineQuota, deliveries, Receiver, startTollgate, use } from "./helpers.js";

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

async function setup() {
  const receiver = await new Receiver().start();
  const t = await startTollgate();
  open.push({ close: () => receiver.stop() }, t);
  const hook = await createWebhook(t, receiver.url, ["limit.warning", "limit.critical", "limit.exceeded"]);
  receiver.secret = hook.secret;
  await defineQuota(t, 1000);
  return { t, receiver, hook };
}

describe("threshold alerts delivered to a real receiver", () => {
  it("80 %, 95 % and 100 % of a quota: exactly three signed deliveries, once each, with the documented payload", async () => {
    const { t, receiver, hook } = await setup();
    expect(hook.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);

    await use(t, 700); // 70 %: nothing
    await t.deliver();
    expect(receiver.requests).toBe(0);

    await use(t, 100); // 80 %
    await t.deliver();
    await use(t, 50); // 85 %: hovering above 80 raises nothing new
    await use(t, 10);
    await t.deliver();
    await use(t, 100); // 96 %
    await t.deliver();
    await use(t, 1); // 96.1 %
    await use(t, 39); // 100 %
    await t.deliver();
    await use(t, 500); // 150 %: still the same window
    await t.deliver();
    await t.deliver();

    expect(receiver.rejected).toEqual([]);
    expect(receiver.received.map((r) => r.payload.type)).toEqual([
      "limit.warning",
      "limit.critical",
      "limit.exceeded",
    ]);
    const ids = receiver.received.map((r) => r.headers["webhook-id"]);
    expect(new Set(ids).size).toBe(3);
    for (const r of receiver.received) {
      expect(r.headers["content-type"]).toBe("application/json");
      expect(r.headers["webhook-id"]).toBe(r.payload.id);
      expect(r.headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    }
    const [warning, critical, exceeded] = receiver.received.map((r) => r.payload);
    expect(warning).toEqual({
      id: expect.stringMatching(/^alt_[0-9a-f]{32}$/),
      type: "limit.warning",
      timestamp: "2026-11-23T10:00:00Z",
      data: {
        limit: {
          id: "monthly",
          customer: "acme",
          meter: "tokens",
          amount: 1000,
          period: "month",
          enforcement: "hard",
        },
        customer: "acme",
        group: {},
        threshold: 80,
        used: 800,
        percent_used: 80,
        window_start: "2026-11-01T00:00:00Z",
        window_end: "2026-12-01T00:00:00Z",
        trigger: "usage",
      },
    });
    expect(critical!.data).toMatchObject({ threshold: 95, used: 960, percent_used: 96 });
    expect(exceeded!.data).toMatchObject({ threshold: 100, used: 1000, percent_used: 100 });

    // Logged: one delivered attempt each, with status code and latency.
    const log = await deliveries(t, hook.id);
    expect(log).toHaveLength(3);
    for (const d of log) {
      expect(d).toMatchObject({ state: "delivered", attempts: 1, last_status: 204, next_attempt_at: null });
      expect(d.attempt_log).toHaveLength(1);
      expect(d.attempt_log[0]).toMatchObject({ attempt: 1, status: 204, error: null });
      expect(d.last_latency_ms).toBeGreaterThanOrEqual(0);
    }

    // Listed at GET /v1/alerts, newest first.
    const alerts = await t.api("GET", "/v1/alerts");
    expect(alerts.status).toBe(200);
    expect(alerts.body.data.map((a: { type: string }) => a.type)).toEqual([
      "limit.exceeded",
      "limit.critical",
      "limit.warning",
    ]);
    expect(alerts.body.data[2]).toMatchObject({
      id: warning!.id,
      customer: "acme",
      created_at: "2026-11-23T10:00:00Z",
      data: warning!.data,
    });
  });

  it("a new window raises the levels again; a restart re-raises nothing already raised", async () => {
    const { t, receiver } = await setup();
    await use(t, 850);
    await t.deliver();
    expect(receiver.received.map((r) => r.payload.type)).toEqual(["limit.warning"]);

    // Restart on the same data: the counter is loaded afresh, the 80 % level is already stored.
    open.splice(open.indexOf(t), 1);
    const t2 = await t.restart();
    open.push(t2);
    await use(t2, 10);
    await t2.deliver();
    expect(receiver.received).toHaveLength(1);

    // December: a new window.
    t.clock.set(Date.UTC(2026, 11, 1, 0, 0, 1));
    await use(t2, 900);
    await t2.deliver();
    expect(receiver.received.map((r) => r.payload.type)).toEqual(["limit.warning", "limit.warning"]);
    expect(receiver.received[1]!.payload.data.window_start).toBe("2026-12-01T00:00:00Z");
  });

  it("one batch that jumps from 0 to 100 % raises every level, lowest first", async () => {
    const { t, receiver } = await setup();
    await use(t, 1200);
    await t.deliver();
    expect(receiver.received.map((r) => r.payload.type).sort()).toEqual([
      "limit.critical",
      "limit.exceeded",
      "limit.warning",
    ]);
  });
});
