import { isPrivateAddress } from "@tollgate/server";
import { afterEach, describe, expect, it } from "vitest";
import { createWebhook, defineQuota, deliveries, Receiver, startTollgate, use } from "./helpers.js";

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(condition()).toBe(true);
}

async function receiver() {
  const r = await new Receiver().start();
  open.push({ close: () => r.stop() });
  return r;
}

describe("the receiving side is untrusted", () => {
  it("a receiver that never answers times out without holding up another endpoint's deliveries", async () => {
    const slow = await receiver();
    const fast = await receiver();
    slow.behaviour = () => {}; // accepts, never answers
    const t = await startTollgate({
      webhooks: { timeoutMs: 1_500, concurrency: 4, perEndpointConcurrency: 1 },
    });
    open.push(t);
    const events = ["limit.warning", "limit.critical", "limit.exceeded"];
    const s = await createWebhook(t, slow.url, events);
    const f = await createWebhook(t, fast.url, events);
    slow.secret = s.secret;
    fast.secret = f.secret;
    await defineQuota(t, 1000);
    await use(t, 1000);

    // Ticks overlap (the poll loop does not wait for one to finish): while the slow endpoint's attempt
    // hangs, later ticks deliver the fast endpoint's alerts one after another.
    await t.server.engine.alerts.settle();
    const worker = t.server.webhooks.worker;
    let firstDone = false;
    const first = worker.tick().then((r) => {
      firstDone = true;
      return r;
    });
    // (Waits for I/O, not for time: each tick starts once the previous fast attempt is stored.)
    await until(() => worker.busy === 1);
    const second = await worker.tick();
    await until(() => worker.busy === 1);
    const third = await worker.tick();
    expect(firstDone).toBe(false);
    expect(second.delivered + third.delivered).toBe(2);
    expect(fast.received).toHaveLength(3);
    expect(slow.requests).toBe(1);
    const report = await first;
    expect(report).toMatchObject({ attempted: 2, delivered: 1, retrying: 1 });
    const slowLog = await deliveries(t, s.id);
    const attempted = slowLog.filter((d) => d.attempts === 1);
    expect(attempted).toHaveLength(1);
    expect(attempted[0]).toMatchObject({ state: "pending", last_status: null, last_error: "timed out" });
    expect(attempted[0]!.last_latency_ms).toBeGreaterThanOrEqual(1_500);
    expect((await deliveries(t, f.id)).every((d) => d.state === "delivered")).toBe(true);
  });

  it("a response body that never ends is read only up to the cap; the status still counts", async () => {
    const huge = await receiver();
    let written = 0;
    huge.behaviour = (_req, res) => {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      const chunk = Buffer.alloc(64 * 1024, 120);
      const pump = () => {
        while (!res.destroyed && written < 512 * 1024 * 1024) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once("drain", pump);
        }
      };
      res.on("close", () => {});
      pump();
    };
    const t = await startTollgate({ webhooks: { timeoutMs: 5_000, responseBytesMax: 32 * 1024 } });
    open.push(t);
    const hook = await createWebhook(t, huge.url, ["limit.exceeded"]);
    huge.secret = hook.secret;
    await defineQuota(t, 10);
    await use(t, 10);
    await t.deliver();
    const [d] = await deliveries(t, hook.id);
    expect(d).toMatchObject({ state: "delivered", last_status: 200, last_error: null });
    expect(d!.last_latency_ms).toBeLessThan(4_000);
    expect(written).toBeLessThan(64 * 1024 * 1024);
  });

  it("redirects are not followed", async () => {
    const target = await receiver();
    const redirecting = await receiver();
    redirecting.behaviour = (_req, res) => {
      res.writeHead(307, { location: target.url }).end();
    };
    const t = await startTollgate();
    open.push(t);
    const hook = await createWebhook(t, redirecting.url, ["limit.exceeded"]);
    redirecting.secret = hook.secret;
    await defineQuota(t, 10);
    await use(t, 10);
    await t.deliver();
    const [d] = await deliveries(t, hook.id);
    expect(d).toMatchObject({ state: "pending", last_status: 307, last_error: "redirect not followed" });
    expect(target.requests).toBe(0);
  });

  it("private addresses are refused unless allowed: IP literals and names that resolve to them", async () => {
    const r = await receiver();
    const t = await startTollgate({ webhooks: { allowPrivateAddresses: false } });
    open.push(t);
    const byIp = await createWebhook(t, r.url, ["limit.exceeded"]);
    const byName = await createWebhook(t, `http://localhost:${r.port}/hooks`, ["limit.exceeded"]);
    await defineQuota(t, 10);
    await use(t, 10);
    await t.deliver();
    expect(r.requests).toBe(0);
    for (const hook of [byIp, byName]) {
      const [d] = await deliveries(t, hook.id);
      expect(d).toMatchObject({ state: "pending", last_status: null });
      expect(d!.last_error).toMatch(/private address/);
    }
  });

  it("isPrivateAddress knows the ranges", () => {
    for (const ip of [
      "127.0.0.1",
      "10.1.2.3",
      "172.16.0.1",
      "172.31.255.255",
      "192.168.1.1",
      "169.254.169.254",
      "100.64.0.1",
      "0.0.0.0",
      "224.0.0.1",
      "::1",
      "::",
      "fc00::1",
      "fd12:3456::1",
      "fe80::1",
      "::ffff:127.0.0.1",
      "::ffff:10.0.0.1",
    ]) {
      expect(isPrivateAddress(ip), ip).toBe(true);
    }
    for (const ip of [
      "8.8.8.8",
      "1.1.1.1",
      "172.32.0.1",
      "93.184.216.34",
      "2606:4700:4700::1111",
      "::ffff:8.8.8.8",
    ]) {
      expect(isPrivateAddress(ip), ip).toBe(false);
    }
  });
});
