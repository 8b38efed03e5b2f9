import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock } from "@tollgate/core";
import { type RunningServer, startServer } from "../../packages/cli/src/runtime.js";
import { readTrace } from "../support/azure.js";
import { type ApiResponse, call } from "../support/server.js";

/**
 * A Tollgate filled from ../shared/data/azure-llm-2023 for the dashboard: both files of the trace
 * (28,185 requests) stretched over 330 days that end an hour before the server's (manual) clock, so
 * that the daily, weekly and monthly charts all have data; five customers on three plans, monthly
 * token limits sized so that their current states are exceeded, critical, warning and ok; credits
 * and a debit rule (balances and transactions); two webhook endpoints, one answering 204 and one 500.
 */
export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
/** The server's clock: Friday 2026-10-30 12:30 UTC. */
export const NOW = Date.UTC(2026, 9, 30, 12, 30, 0);
const SPAN = 330 * DAY;
const END = NOW - HOUR;

export const CUSTOMERS = [
  { id: "acme", name: "Acme Inc.", plan: "enterprise", target: 1.15 },
  { id: "bob", name: "Bob's Bots", plan: "pro", target: 0.96 },
  { id: "carol", name: "Carol Analytics", plan: "pro", target: 0.85 },
  { id: "dana", name: "Dana Health", plan: "free", target: 0.3 },
  { id: "erin", name: null, plan: null, target: null },
] as const;

const MODELS = {
  // pico-USD per token: in, out
  "gpt-4o": [2_500_000n, 10_000_000n],
  "gpt-4o-mini": [150_000n, 600_000n],
  "claude-sonnet-4": [3_000_000n, 15_000_000n],
} as const;

export interface FixtureEvent {
  id: string;
  customer: string;
  timestamp: number;
  tokensIn: number;
  tokensOut: number;
  cost: bigint;
  model: keyof typeof MODELS;
  workflow: string;
  /** Ten consecutive rows of a file form one run. */
  run: string;
}

export function fixtureEvents(): FixtureEvent[] {
  const files = [
    ["conv", "chat"],
    ["code", "code-review"],
  ] as const;
  const traces = files.map(([file]) => readTrace(file));
  const all = traces.flat().map((r) => r.timestamp);
  const first = Math.min(...all);
  const last = Math.max(...all);
  const out: FixtureEvent[] = [];
  files.forEach(([file, workflow], f) => {
    traces[f]!.forEach((row, i) => {
      const model: keyof typeof MODELS =
        file === "code"
          ? i % 4 === 0
            ? "claude-sonnet-4"
            : "gpt-4o-mini"
          : i % 3 === 0
            ? "gpt-4o"
            : "gpt-4o-mini";
      const [pin, pout] = MODELS[model];
      out.push({
        id: `${file}_${i}`,
        customer: CUSTOMERS[i % CUSTOMERS.length]!.id,
        timestamp: END - SPAN + Math.floor(((row.timestamp - first) / (last - first)) * SPAN),
        tokensIn: row.contextTokens,
        tokensOut: row.generatedTokens,
        cost: BigInt(row.contextTokens) * pin + BigInt(row.generatedTokens) * pout,
        model,
        workflow,
        run: `${file}_${Math.floor(i / 10)}`,
      });
    });
  });
  return out;
}

/** pico-USD → the API's decimal USD string. */
export function usd(pico: bigint): string {
  const digits = pico.toString().padStart(13, "0");
  let frac = digits.slice(-12).replace(/0+$/, "");
  if (frac.length < 6) frac = frac.padEnd(6, "0");
  return `${digits.slice(0, -12)}.${frac}`;
}

export interface Fixture {
  server: RunningServer;
  url: string;
  adminKey: string;
  serviceKey: string;
  clock: ManualClock;
  events: FixtureEvent[];
  api(method: string, path: string, body?: unknown, key?: string): Promise<ApiResponse>;
  close(): Promise<void>;
}

function receiver(status: number): Promise<Server> {
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(status).end());
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

/**
 * Sends a setup call and requires success. A 503 (the server sheds load while this busy test process
 * lags) is retried after its Retry-After, as a client should; anything else fails the setup.
 */
async function must(send: () => Promise<ApiResponse>, what: string): Promise<ApiResponse> {
  for (let attempt = 1; ; attempt++) {
    const r = await send();
    if (r.status === 503 && attempt < 30) {
      const after = Number(r.headers.get("retry-after") ?? "1");
      await new Promise((resolve) => setTimeout(resolve, Math.min(5, Math.max(1, after)) * 1000));
      continue;
    }
    if (r.status >= 300) throw new Error(`${what}: ${r.status} ${r.text}`);
    return r;
  }
}

export async function startFixture(): Promise<Fixture> {
  const dataDir = mkdtempSync(join(tmpdir(), "tollgate-dashboard-"));
  const clock = new ManualClock(NOW);
  const adminKey = `tg_test_${Math.random().toString(36).slice(2)}`;
  const server = await startServer({
    dataDir,
    port: 0,
    adminKey,
    clock,
    apiRateLimit: null,
    webhooks: { allowPrivateAddresses: true, pollIntervalMs: 0, timeoutMs: 2_000 },
  });
  const api = (method: string, path: string, body?: unknown, key?: string) =>
    call(server.url, method, path, body, { key: key ?? adminKey });
  const ok = await receiver(204);
  const broken = await receiver(500);
  const events = fixtureEvents();

  await must(
    () =>
      api("PUT", "/v1/meters/tokens", {
        event_type: "llm.completion",
        aggregation: "sum",
        value: ["tokens_in", "tokens_out"],
      }),
    "meter",
  );
  for (const [id, name] of [
    ["free", "Free"],
    ["pro", "Pro"],
    ["enterprise", "Enterprise"],
  ])
    await must(() => api("PUT", `/v1/plans/${id}`, { name }), `plan ${id}`);
  // Current-month usage per customer, from the events themselves: limits are sized from it.
  const monthStart = Date.UTC(new Date(NOW).getUTCFullYear(), new Date(NOW).getUTCMonth(), 1);
  const used = new Map<string, number>();
  for (const e of events)
    if (e.timestamp >= monthStart && e.timestamp < NOW)
      used.set(e.customer, (used.get(e.customer) ?? 0) + e.tokensIn + e.tokensOut);
  for (const c of CUSTOMERS) {
    await must(
      () =>
        api("PUT", `/v1/customers/${c.id}`, {
          ...(c.name ? { name: c.name } : {}),
          ...(c.plan ? { plan: c.plan } : {}),
        }),
      `customer ${c.id}`,
    );
    if (c.target !== null) {
      await must(
        () =>
          api("PUT", "/v1/limits/monthly-tokens", {
            customer: c.id,
            meter: "tokens",
            amount: Math.floor((used.get(c.id) ?? 0) / c.target),
            period: "month",
            enforcement: "soft",
            thresholds: [80, 95],
          }),
        `limit ${c.id}`,
      );
    }
  }
  await must(
    () =>
      api("PUT", "/v1/limits/daily-tokens", {
        plan: "pro",
        meter: "tokens",
        amount: 5_000_000,
        period: "day",
        enforcement: "hard",
      }),
    "plan limit",
  );
  await must(
    () => api("PUT", "/v1/balance-rules/per-1k-tokens", { meter: "tokens", credits_per_unit: 1, unit: 1000 }),
    "rule",
  );
  for (const [i, c] of CUSTOMERS.entries()) {
    await must(
      () =>
        api("POST", `/v1/customers/${c.id}/balance/credits`, {
          amount: 20_000 * (i + 1),
          idempotency_key: `start-${c.id}`,
          description: "Starter credits",
        }),
      `credits ${c.id}`,
    );
  }
  const port = (s: Server) => (s.address() as AddressInfo).port;
  await must(
    () =>
      api("POST", "/v1/webhooks", {
        url: `http://127.0.0.1:${port(ok)}/hooks`,
        events: ["limit.warning", "limit.critical", "limit.exceeded"],
        description: "Ops channel",
      }),
    "webhook ok",
  );
  await must(
    () =>
      api("POST", "/v1/webhooks", {
        url: `http://127.0.0.1:${port(broken)}/hooks`,
        events: ["limit.exceeded"],
        description: "Billing (failing)",
      }),
    "webhook broken",
  );

  for (let i = 0; i < events.length; i += 1000) {
    const batch = events.slice(i, i + 1000).map((e) => ({
      id: e.id,
      type: "llm.completion",
      customer: e.customer,
      timestamp: new Date(e.timestamp).toISOString(),
      values: { tokens_in: e.tokensIn, tokens_out: e.tokensOut, steps: 1, cost: usd(e.cost) },
      dimensions: { model: e.model, workflow: e.workflow, run: e.run },
    }));
    await must(() => api("POST", "/v1/events", { events: batch }), `events ${i}`);
  }
  // Alerts are raised in the background; two rounds deliver those raised during the first.
  for (let round = 0; round < 2; round++) {
    await server.engine.alerts.settle();
    await server.webhooks.tick();
    await server.engine.alerts.settle();
  }

  const serviceKey = (
    await must(() => api("POST", "/v1/api-keys", { name: "dashboard", role: "service" }), "key")
  ).body.key as string;

  return {
    server,
    url: server.url,
    adminKey,
    serviceKey,
    clock,
    events,
    api,
    async close() {
      await server.close();
      await new Promise((r) => ok.close(r));
      await new Promise((r) => broken.close(r));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
