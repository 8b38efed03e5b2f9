import Fastify from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { installErrorHandling } from "../src/errors.js";
import { installOverloadProtection, type OverloadOptions } from "../src/overload.js";

const apps: ReturnType<typeof Fastify>[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

async function appWith(options: OverloadOptions, shed: string[]) {
  const app = Fastify();
  apps.push(app);
  installErrorHandling(app);
  installOverloadProtection(app, options, (reason) => shed.push(reason));
  app.get("/x", async () => ({ ok: true }));
  await app.ready();
  return app;
}

const block = (ms: number) => {
  const end = Date.now() + ms;
  while (Date.now() < end) {}
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Blocks the event loop once, then requests /x every 25 ms for `forMs`: the statuses seen. */
async function afterABlock(app: Awaited<ReturnType<typeof appWith>>, forMs: number) {
  await sleep(50);
  block(250);
  const statuses: number[] = [];
  const end = Date.now() + forMs;
  while (Date.now() < end) {
    const res = await app.inject({ method: "GET", url: "/x" });
    statuses.push(res.statusCode);
    if (res.statusCode === 503) {
      expect(res.headers["retry-after"]).toBe("1");
      expect(res.json()).toMatchObject({ error: { code: "UNAVAILABLE", details: { reason: "event_loop" } } });
    }
    await sleep(25);
  }
  return statuses;
}

describe("overload protection: event-loop delay", () => {
  it("sheds past maxEventLoopDelayMs, then recovers", async () => {
    const shed: string[] = [];
    const app = await appWith({ maxEventLoopDelayMs: 100 }, shed);
    const statuses = await afterABlock(app, 1500);
    expect(statuses).toContain(503);
    expect(shed).toContain("event_loop");
    // Sampled every 500 ms: once the loop is on time again, requests are admitted.
    await sleep(1100);
    expect((await app.inject({ method: "GET", url: "/x" })).statusCode).toBe(200);
  });

  it("never sheds for the event loop's delay with maxEventLoopDelayMs 0 (the default)", async () => {
    const shed: string[] = [];
    const app = await appWith({}, shed);
    const statuses = await afterABlock(app, 1200);
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(shed).toEqual([]);
  });
});
