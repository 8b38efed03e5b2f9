import { afterEach, describe, expect, it } from "vitest";
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

/**
 * Moves the clock to the earliest pending delivery's next attempt (or, with `all`, to the latest, so
 * that every pending one is due); false when none is pending.
 */
async function toNextAttempt(t: Tollgate, hookId: string, all = false): Promise<boolean> {
  const pending = (await deliveries(t, hookId)).filter((d) => d.state === "pending");
  if (pending.length === 0) return false;
  const times = pending.map((d) => Date.parse(d.next_attempt_at!));
  const next = all ? Math.max(...times) : Math.min(...times);
  if (next > t.clock.now()) t.clock.set(next);
  return true;
}

async function threeAlerts(t: Tollgate) {
  await use(t, 800);
  await use(t, 150);
  await use(t, 50);
  await t.deliver();
}

describe("retries with backoff (fake clock)", () => {
  it("a receiver that is down for its first attempts receives every delivery once it is back, none lost", async () => {
    const receiver = await new Receiver().start();
    const port = receiver.port;
    let t = await startTollgate();
    open.push({ close: () => receiver.stop() }, { close: () => t.close() });
    const hook = await createWebhook(t, receiver.url, ["limit.warning", "limit.critical", "limit.exceeded"]);
    receiver.secret = hook.secret;
    await defineQuota(t, 1000);
    await receiver.stop(); // down: connections are refused

    await threeAlerts(t);
    let log = await deliveries(t, hook.id);
    expect(log).toHaveLength(3);
    for (const d of log) {
      expect(d).toMatchObject({ state: "pending", attempts: 1, last_status: null });
      expect(d.last_error).toMatch(/ECONNREFUSED|connect/i);
      // The first retry waits 7.5 to 15 s (15 s nominal, equal jitter).
      const wait = Date.parse(d.next_attempt_at!) - t.clock.now();
      expect(wait).toBeGreaterThanOrEqual(7_500);
      expect(wait).toBeLessThanOrEqual(15_000);
    }
    // Nothing is due before its time.
    await t.deliver();
    expect((await deliveries(t, hook.id)).every((d) => d.attempts === 1)).toBe(true);

    // Two more rounds of failures, then Tollgate restarts in the middle of the retries.
    for (let i = 0; i < 2; i++) {
      expect(await toNextAttempt(t, hook.id, true)).toBe(true);
      await t.deliver();
    }
    const before = await deliveries(t, hook.id);
    expect(before.every((d) => d.state === "pending" && d.attempts === 3)).toBe(true);
    t = await t.restart();

    await receiver.start(port); // back
    for (let round = 0; round < 20 && (await toNextAttempt(t, hook.id)); round++) await t.deliver();

    log = await deliveries(t, hook.id);
    expect(log.map((d) => d.state)).toEqual(["delivered", "delivered", "delivered"]);
    expect(receiver.rejected).toEqual([]);
    expect(new Set(receiver.received.map((r) => r.headers["webhook-id"])).size).toBe(3);
    expect(receiver.received.map((r) => r.payload.type).sort()).toEqual([
      "limit.critical",
      "limit.exceeded",
      "limit.warning",
    ]);
    for (const d of log) {
      // Every attempt is logged: the failures without a status, the last one with 204.
      expect(d.attempt_log.map((a) => a.attempt)).toEqual(d.attempt_log.map((_, i) => i + 1));
      expect(d.attempts).toBe(d.attempt_log.length);
      expect(d.attempt_log.at(-1)).toMatchObject({ status: 204, error: null });
      expect(d.attempt_log.slice(0, -1).every((a) => a.status === null)).toBe(true);
      // Waits grow: each gap is at least half the nominal delay of its attempt.
      const at = d.attempt_log.map((a) => Date.parse(a.at));
      for (let i = 1; i < at.length; i++) {
        expect(at[i]! - at[i - 1]!).toBeGreaterThanOrEqual((15_000 * 2 ** (i - 1)) / 2);
      }
    }
  });

  it("failing answers (500, a redirect) are retried for at least 24 hours, then failed; manual redelivery sends it again", async () => {
    const receiver = await new Receiver().start();
    const t = await startTollgate();
    open.push({ close: () => receiver.stop() }, t);
    const hook = await createWebhook(t, receiver.url, ["limit.exceeded"]);
    receiver.secret = hook.secret;
    await defineQuota(t, 1000);
    receiver.behaviour = (_req, res, n) => {
      if (n % 2 === 0) res.writeHead(302, { location: "http://127.0.0.1:1/elsewhere" }).end();
      else res.writeHead(500).end("no");
    };
    const start = t.clock.now();
    await use(t, 1000);
    await t.deliver();
    let rounds = 0;
    while (await toNextAttempt(t, hook.id)) {
      await t.deliver();
      rounds++;
      expect(rounds).toBeLessThan(100);
    }
    const [d] = await deliveries(t, hook.id);
    expect(d!.state).toBe("failed");
    expect(d!.next_attempt_at).toBeNull();
    const last = Date.parse(d!.attempt_log.at(-1)!.at);
    expect(last - start).toBeGreaterThanOrEqual(DAY);
    expect(last - start).toBeLessThan(DAY + 2 * 3_600_000);
    expect(d!.attempts).toBe(receiver.requests);
    expect(d!.attempts).toBeGreaterThanOrEqual(15);
    expect(d!.attempt_log.map((a) => a.status)).toEqual(
      d!.attempt_log.map((a) => (a.attempt % 2 === 0 ? 302 : 500)),
    );
    expect(
      d!.attempt_log.filter((a) => a.status === 302).every((a) => a.error === "redirect not followed"),
    ).toBe(true);
    // The redirect target was never requested (it would have failed on port 1 anyway): only our receiver saw requests.

    // Manual redelivery: pending again, due now, a new round of retries.
    receiver.behaviour = (_req, res) => {
      res.writeHead(200).end("ok");
    };
    const redo = await t.api("POST", `/v1/webhooks/${hook.id}/deliveries/${d!.id}/redeliver`);
    expect(redo.status, redo.text).toBe(202);
    expect(redo.body).toMatchObject({ id: d!.id, state: "pending" });
    await t.deliver();
    const [after] = await deliveries(t, hook.id);
    expect(after).toMatchObject({ state: "delivered", attempts: d!.attempts + 1, last_status: 200 });
    // Same message id each time: receivers deduplicate by it.
    expect(new Set(receiver.received.map((r) => r.headers["webhook-id"])).size).toBe(1);
  });

  it("a shutdown in the middle of an attempt aborts it unlogged; after the restart it is sent again, same webhook-id", async () => {
    const receiver = await new Receiver().start();
    let t = await startTollgate({ webhooks: { timeoutMs: 10_000 } });
    open.push({ close: () => receiver.stop() }, { close: () => t.close() });
    const hook = await createWebhook(t, receiver.url, ["limit.exceeded"]);
    receiver.secret = hook.secret;
    await defineQuota(t, 10);
    receiver.behaviour = () => {}; // hangs
    await use(t, 10);
    await t.server.engine.alerts.settle();
    const inFlight = t.server.webhooks.worker.tick();
    for (let i = 0; i < 200 && receiver.requests === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(receiver.requests).toBe(1);

    const started = performance.now();
    t = await t.restart(); // closes the first server while the attempt is in flight
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(await inFlight).toMatchObject({ attempted: 1, delivered: 0, failed: 0 });
    const [pending] = await deliveries(t, hook.id);
    expect(pending).toMatchObject({ state: "pending", attempts: 0, attempt_log: [] });

    receiver.behaviour = (_req, res) => {
      res.writeHead(200).end();
    };
    await t.deliver();
    const [done] = await deliveries(t, hook.id);
    expect(done).toMatchObject({ state: "delivered", attempts: 1 });
    const ids = receiver.received.map((r) => r.headers["webhook-id"]);
    expect(ids).toHaveLength(2);
    expect(new Set(ids).size).toBe(1);
  });
});
