import type { AddressInfo } from "node:net";
import { Tollgate, tollgateExpress, tollgateFastify, tollgateHono } from "@tollgate/sdk";
import express from "express";
import Fastify from "fastify";
import { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.js";

let t: TestServer;
let tollgate: Tollgate;
let n = 0;

beforeAll(async () => {
  t = await startTestServer({ apiRateLimit: null });
  tollgate = new Tollgate({ baseUrl: t.url, apiKey: t.adminKey, flushOnExit: false });
  await tollgate.meters.put("requests", { event_type: "http.request", aggregation: "count" });
});
afterAll(async () => {
  await tollgate?.close();
  await t?.close();
});

interface Answer {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: checked field by field
  body: any;
}
type Send = (headers: Record<string, string>) => Promise<Answer>;

/** Each framework: an app with the middleware in front of GET /work, and how to call it. */
const frameworks: Record<string, () => Promise<{ send: Send; close: () => Promise<void> }>> = {
  async express() {
    const app = express();
    app.use(tollgateExpress({ client: tollgate, reserve: true }));
    app.get("/work", (_req, res) => {
      res.json({ ok: true });
    });
    const server = app.listen(0, "127.0.0.1");
    await new Promise((r) => server.once("listening", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/work`;
    return {
      send: async (headers) => {
        const res = await fetch(url, { headers });
        return { status: res.status, headers: res.headers, body: await res.json() };
      },
      close: () => new Promise<void>((r) => server.close(() => r())),
    };
  },
  async fastify() {
    const app = Fastify();
    app.addHook("onRequest", tollgateFastify({ client: tollgate, reserve: true }));
    app.get("/work", async () => ({ ok: true }));
    await app.ready();
    return {
      send: async (headers) => {
        const res = await app.inject({ method: "GET", url: "/work", headers });
        return {
          status: res.statusCode,
          headers: new Headers(res.headers as Record<string, string>),
          body: res.json(),
        };
      },
      close: () => app.close(),
    };
  },
  async hono() {
    const app = new Hono();
    app.use("*", tollgateHono({ client: tollgate, reserve: true }));
    app.get("/work", (c) => c.json({ ok: true }));
    return {
      send: async (headers) => {
        const res = await app.request("/work", { headers });
        return { status: res.status, headers: res.headers, body: await res.json() };
      },
      close: async () => {},
    };
  },
};

for (const [name, start] of Object.entries(frameworks)) {
  describe(`${name} middleware`, () => {
    it("sets X-RateLimit-* and RateLimit headers, then answers 429 in the API.md shape with Retry-After", async () => {
      const customer = `mw-${++n}`;
      await tollgate.rateLimits.put("per-minute", {
        customer,
        scope: "customer",
        event_type: "http.request",
        limit: 2,
        window_seconds: 60,
        algorithm: "fixed_window",
      });
      const app = await start();
      try {
        const first = await app.send({ "x-tollgate-customer": customer });
        expect(first.status).toBe(200);
        expect(first.body).toEqual({ ok: true });
        expect(first.headers.get("x-ratelimit-limit")).toBe("2");
        expect(first.headers.get("x-ratelimit-remaining")).toBe("1");
        const reset = Number(first.headers.get("x-ratelimit-reset"));
        const resetAfter = Number(first.headers.get("x-ratelimit-reset-after"));
        expect(reset).toBeGreaterThan(Date.now() / 1000 - 1);
        expect(resetAfter).toBeGreaterThanOrEqual(0);
        expect(resetAfter).toBeLessThanOrEqual(60);
        expect(first.headers.get("ratelimit-policy")).toBe('"per-minute";q=2');
        expect(first.headers.get("ratelimit")).toBe(`"per-minute";r=1;t=${resetAfter}`);
        expect(first.headers.get("retry-after")).toBeNull();

        expect((await app.send({ "x-tollgate-customer": customer })).status).toBe(200);
        const denied = await app.send({ "x-tollgate-customer": customer });
        expect(denied.status).toBe(429);
        const retryAfter = Number(denied.headers.get("retry-after"));
        expect(retryAfter).toBeGreaterThanOrEqual(1);
        expect(retryAfter).toBeLessThanOrEqual(60);
        expect(denied.headers.get("x-ratelimit-remaining")).toBe("0");
        expect(denied.body).toEqual({
          error: {
            code: "RATE_LIMIT_EXCEEDED",
            message: "rate limit exceeded",
            details: {
              limit: 2,
              remaining: 0,
              reset_at: new Date(Number(denied.headers.get("x-ratelimit-reset")) * 1000)
                .toISOString()
                .replace(".000Z", "Z"),
              retry_after: retryAfter,
            },
            status: 429,
          },
        });
        // Requests with no customer pass unchecked.
        expect((await app.send({})).status).toBe(200);
      } finally {
        await app.close();
      }
    });

    it("a quota answers 429 LIMIT_EXCEEDED; reserved requests are recorded when they finish", async () => {
      const customer = `mw-${++n}`;
      await tollgate.customers.put(customer, { name: customer });
      await tollgate.limits.put("monthly", { customer, meter: "requests", amount: 2, period: "month" });
      const app = await start();
      try {
        expect((await app.send({ "x-tollgate-customer": customer })).status).toBe(200);
        expect((await app.send({ "x-tollgate-customer": customer })).status).toBe(200);
        // Commits run after the response is sent; the quota sees them once they land.
        await until(async () => {
          const l = (await tollgate.customers.limits(customer)).data[0]!;
          return l.used === 2 && l.reserved === 0;
        });
        const denied = await app.send({ "x-tollgate-customer": customer });
        expect(denied.status).toBe(429);
        expect(denied.body.error.code).toBe("LIMIT_EXCEEDED");
        expect(denied.body.error.details).toMatchObject({ limit: 2, remaining: 0 });
        expect(Number(denied.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      } finally {
        await app.close();
      }
    });
  });
}

describe("balances in middleware", () => {
  it("402 INSUFFICIENT_BALANCE in the API.md shape once the credits are spent", async () => {
    // Its own workspace: a debit rule applies to every customer of a workspace.
    const boot = await t.server.engine.bootstrap("mw-balances");
    const client = new Tollgate({ baseUrl: t.url, apiKey: boot.adminKey!, flushOnExit: false });
    await client.meters.put("requests", { event_type: "http.request", aggregation: "count" });
    await client.balanceRules.put("per-request", { meter: "requests", credits_per_unit: 1 });
    await client.customers.put("payg", { name: "Pay as you go" });
    await client.balances.credit("payg", { amount: 2, idempotency_key: "topup-1" });
    for (const [name, start] of Object.entries(frameworks)) {
      const saved = tollgate;
      tollgate = client;
      const app = await start();
      tollgate = saved;
      try {
        const res = await app.send({ "x-tollgate-customer": "payg" });
        if (name === "express" || name === "fastify") expect(res.status).toBe(200);
        else {
          expect(res.status).toBe(402);
          expect(res.body).toEqual({
            error: {
              code: "INSUFFICIENT_BALANCE",
              message: "insufficient balance",
              details: expect.objectContaining({ remaining: 0, retry_after: expect.any(Number) }),
              status: 402,
            },
          });
          expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
        }
      } finally {
        await app.close();
      }
    }
    await client.close();
  });
});

describe("fail mode in middleware", () => {
  it("closed answers 503 UNAVAILABLE in the API.md shape; open lets the request through", async () => {
    const down = new Tollgate({ baseUrl: "http://127.0.0.1:9", timeoutMs: 200, flushOnExit: false });
    for (const failMode of ["closed", "open"] as const) {
      const app = new Hono();
      app.use("*", tollgateHono({ client: down, failMode }));
      app.get("/work", (c) => c.json({ ok: true }));
      const res = await app.request("/work", { headers: { "x-tollgate-customer": "acme" } });
      if (failMode === "open") expect(res.status).toBe(200);
      else {
        expect(res.status).toBe(503);
        expect(((await res.json()) as { error: unknown }).error).toMatchObject({
          code: "UNAVAILABLE",
          status: 503,
        });
      }
    }
  });
});

async function until(condition: () => Promise<boolean>, timeoutMs = 5000) {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}
