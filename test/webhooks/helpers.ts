import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock } from "@tollgate/core";
import type { WebhookServiceOptions } from "@tollgate/server";
import { Webhook } from "standardwebhooks";
import { expect } from "vitest";
import { type RunningServer, startServer } from "../../packages/cli/src/runtime.js";
import { type ApiResponse, call } from "../support/server.js";

/** Monday 2026-11-23 10:00:00Z. */
export const T0 = Date.UTC(2026, 10, 23, 10, 0, 0);
export const HOUR = 3_600_000;
export const DAY = 86_400_000;

/** A deterministic [0, 1) source (mulberry32) for the backoff's jitter. */
export function seeded(seed = 42): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Tollgate {
  server: RunningServer;
  url: string;
  adminKey: string;
  dataDir: string;
  clock: ManualClock;
  api(method: string, path: string, body?: unknown, key?: string): Promise<ApiResponse>;
  /** Waits for background alert raising, then one worker round (summaries due, deliveries due). */
  deliver(): Promise<void>;
  /** Stops this server and starts another on the same data folder, clock and admin key. */
  restart(): Promise<Tollgate>;
  /** Stops the server; removes the data folder if this helper made it. */
  close(): Promise<void>;
}

/**
 * A Tollgate on loopback over `dataDir` (fresh when left out) with the webhook poll loop off: tests
 * drive deliveries with deliver() and time with the ManualClock. Loopback is allowed (the receiver
 * runs on 127.0.0.1) unless `webhooks.allowPrivateAddresses` says otherwise.
 */
export async function startTollgate(
  options: {
    dataDir?: string;
    clock?: ManualClock;
    adminKey?: string;
    webhooks?: WebhookServiceOptions;
  } = {},
): Promise<Tollgate> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "tollgate-webhooks-"));
  const clock = options.clock ?? new ManualClock(T0);
  const adminKey = options.adminKey ?? `tg_test_${Math.random().toString(36).slice(2)}`;
  const server = await startServer({
    dataDir,
    port: 0,
    adminKey,
    clock,
    apiRateLimit: null,
    webhooks: {
      allowPrivateAddresses: true,
      pollIntervalMs: 0,
      random: seeded(),
      timeoutMs: 2_000,
      ...options.webhooks,
    },
  });
  return {
    server,
    url: server.url,
    adminKey,
    dataDir,
    clock,
    api: (method, path, body, key) => call(server.url, method, path, body, { key: key ?? adminKey }),
    async deliver() {
      await server.engine.alerts.settle();
      await server.webhooks.tick();
      await server.engine.alerts.settle();
    },
    async restart() {
      await server.close();
      const next = await startTollgate({ ...options, dataDir, clock, adminKey });
      // The new server owns the folder's removal when this one did.
      return options.dataDir
        ? next
        : {
            ...next,
            close: async () => {
              await next.close();
              rmSync(dataDir, { recursive: true, force: true });
            },
          };
    },
    async close() {
      await server.close();
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface Received {
  headers: Record<string, string>;
  body: string;
  /** The payload as standardwebhooks verified it (throws in the handler when it does not verify). */
  payload: { id: string; type: string; timestamp: string; data: Record<string, unknown> };
}

type Behaviour = (req: IncomingMessage, res: ServerResponse, n: number) => void | Promise<void>;

/** A webhook receiver on 127.0.0.1 that verifies every request with the standardwebhooks package. */
export class Receiver {
  readonly received: Received[] = [];
  /** Requests whose signature did not verify. */
  readonly rejected: { error: string; headers: Record<string, string> }[] = [];
  requests = 0;
  secret = "";
  behaviour: Behaviour = (_req, res) => {
    res.writeHead(204).end();
  };
  private server: Server | null = null;
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks`;
  }

  async start(port = 0): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const n = ++this.requests;
        const body = Buffer.concat(chunks).toString("utf8");
        const headers = Object.fromEntries(
          Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(",") : (v ?? "")]),
        );
        try {
          const payload = new Webhook(this.secret).verify(body, headers) as Received["payload"];
          this.received.push({ headers, body, payload });
        } catch (e) {
          this.rejected.push({ error: String(e), headers });
          res.writeHead(400).end();
          return;
        }
        void this.behaviour(req, res, n);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(port, "127.0.0.1", resolve));
    this.port = (this.server!.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

export async function createWebhook(t: Tollgate, url: string, events: string[]) {
  const res = await t.api("POST", "/v1/webhooks", { url, events });
  expect(res.status, res.text).toBe(201);
  return res.body as { id: string; secret: string; url: string; events: string[] };
}

export async function defineQuota(t: Tollgate, amount: number, extra: Record<string, unknown> = {}) {
  for (const [path, body] of [
    [
      "/v1/meters/tokens",
      { event_type: "llm.completion", aggregation: "sum", value: ["tokens_in", "tokens_out"] },
    ],
    ["/v1/customers/acme", { name: "Acme" }],
    ["/v1/limits/monthly", { customer: "acme", meter: "tokens", amount, period: "month", ...extra }],
  ] as const) {
    const res = await t.api("PUT", path, body);
    expect([200, 201], res.text).toContain(res.status);
  }
}

let seq = 0;
export async function use(
  t: Tollgate,
  tokens: number,
  customer = "acme",
  dimensions?: Record<string, string>,
) {
  const res = await t.api("POST", "/v1/events", {
    events: [
      {
        id: `evt_${process.pid}_${++seq}`,
        type: "llm.completion",
        customer,
        values: { tokens_in: tokens },
        ...(dimensions ? { dimensions } : {}),
      },
    ],
  });
  expect(res.status, res.text).toBe(202);
}

export async function deliveries(t: Tollgate, webhookId: string) {
  const res = await t.api("GET", `/v1/webhooks/${webhookId}/deliveries?limit=500`);
  expect(res.status, res.text).toBe(200);
  return res.body.data as {
    id: string;
    alert_id: string;
    event_type: string;
    state: string;
    attempts: number;
    next_attempt_at: string | null;
    last_status: number | null;
    last_latency_ms: number | null;
    last_error: string | null;
    attempt_log: {
      attempt: number;
      at: string;
      status: number | null;
      latency_ms: number;
      error: string | null;
    }[];
  }[];
}
