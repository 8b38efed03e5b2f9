import { ManualClock } from "@tollgate/core";
import { expect } from "vitest";
import { type ApiResponse, call, startTestServer, type TestServer } from "../support/server.js";

/** Monday 2026-11-23 10:00:00Z: a whole minute, hour and sliding-window sub-bucket boundary. */
export const T0 = Date.UTC(2026, 10, 23, 10, 0, 0);
export const MINUTE = 60_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;
export const TYPE = "llm.completion";

export interface Env {
  t: TestServer;
  clock: ManualClock;
  /** The test's own workspace id. */
  workspace: string;
}

let shared: { server: TestServer; clock: ManualClock } | undefined;
let workspaces = 0;

/**
 * A fresh tenant to test in: its own workspace (and admin key) on the file's one real server, with the
 * file's ManualClock set to `start`, and the meters every limits test uses: tokens (sum of tokens_in
 * + tokens_out), requests (count), steps (sum), peak (max). Workspaces share nothing (limits,
 * counters, holds, rate-limit state), so each test starts from nothing without paying for a server
 * start; tests in a file run one after another, so setting the shared clock is safe.
 */
export async function freshServer(options: { start?: number } = {}): Promise<Env> {
  const start = options.start ?? T0;
  if (!shared) {
    const clock = new ManualClock(start);
    shared = { server: await startTestServer({ clock }), clock };
  }
  const { server, clock } = shared;
  clock.set(start);
  const workspace = `limits-${++workspaces}`;
  const boot = await server.server.engine.bootstrap(workspace);
  const key = boot.adminKey;
  if (!key) throw new Error("bootstrap did not mint an admin key");
  const t: TestServer = {
    ...server,
    adminKey: key,
    api: (method, path, body, opts = {}) => call(server.url, method, path, body, { key, ...opts }),
    close: async () => {},
  };
  await defineMeters(t);
  return { t, clock, workspace };
}

/** Closes the file's server (call from afterAll). */
export async function closeAll(): Promise<void> {
  const s = shared;
  shared = undefined;
  await s?.server.close();
}

export async function defineMeters(t: TestServer): Promise<void> {
  const defs: [string, Record<string, unknown>][] = [
    ["tokens", { event_type: TYPE, aggregation: "sum", value: ["tokens_in", "tokens_out"] }],
    ["requests", { event_type: TYPE, aggregation: "count" }],
    ["steps", { event_type: "agent.step", aggregation: "sum", value: "steps" }],
    ["peak", { event_type: TYPE, aggregation: "max", value: "tokens_in" }],
  ];
  for (const [id, body] of defs) {
    const res = await t.api("PUT", `/v1/meters/${id}`, body);
    expect(res.status, res.text).toBe(201);
  }
}

/** PUT a definition and expect it to be accepted (201 created, or 200 replaced). */
export async function put(t: TestServer, path: string, body: unknown): Promise<ApiResponse> {
  const res = await t.api("PUT", path, body);
  expect([200, 201], `${path}: ${res.text}`).toContain(res.status);
  return res;
}

let eventSeq = 0;

/** Records events over POST /v1/events (default type llm.completion, timestamp: the server's now). */
export async function record(
  t: TestServer,
  events: {
    customer: string;
    /** Usage amounts; `cost` (an event's own) is a decimal USD string. */
    values?: Record<string, number | string>;
    dimensions?: Record<string, string>;
    type?: string;
    timestamp?: string;
    id?: string;
  }[],
): Promise<void> {
  const body = {
    events: events.map((e) => ({
      id: e.id ?? `evt_${process.pid}_${++eventSeq}`,
      type: e.type ?? TYPE,
      customer: e.customer,
      ...(e.timestamp ? { timestamp: e.timestamp } : {}),
      ...(e.values ? { values: e.values } : {}),
      ...(e.dimensions ? { dimensions: e.dimensions } : {}),
    })),
  };
  const res = await t.api("POST", "/v1/events", body);
  expect(res.status, res.text).toBe(202);
  expect(res.body.accepted).toBe(events.length);
}

export interface CheckEventBody {
  customer: string;
  type?: string;
  values?: Record<string, number>;
  dimensions?: Record<string, string>;
}

/** POST /v1/check; expects 200 (a denial is an answer, not an error). */
export async function check(
  t: TestServer,
  event: CheckEventBody,
  reserve?: { ttl_seconds?: number },
): Promise<CheckAnswer> {
  const res = await t.api("POST", "/v1/check", {
    event: { type: TYPE, ...event },
    ...(reserve ? { reserve } : {}),
  });
  expect(res.status, res.text).toBe(200);
  expect(typeof res.body.allowed).toBe("boolean");
  expect(Array.isArray(res.body.limits)).toBe(true);
  return res.body as CheckAnswer;
}

export interface LimitAnswer {
  id: string;
  kind: "quota" | "rate" | "concurrency" | "balance";
  allowed: boolean;
  exceeded: boolean;
  enforcement: string;
  limit: number;
  remaining: number;
  used?: number;
  reserved?: number;
  reset_at: string | null;
  retry_after?: number;
  group?: Record<string, string | null>;
}

export interface CheckAnswer {
  allowed: boolean;
  code?: string;
  limits: LimitAnswer[];
  reservation?: { id: string; expires_at: string };
}

/** The outcome of one limit in a check answer (and, with `group`, of that group). */
export function outcome(answer: CheckAnswer, id: string): LimitAnswer {
  const found = answer.limits.filter((l) => l.id === id);
  expect(found.length, `limit ${id} in ${JSON.stringify(answer)}`).toBe(1);
  return found[0]!;
}

export interface CustomerLimit {
  id: string;
  kind: string;
  limit: number;
  used: number;
  reserved: number;
  remaining: number;
  percent_used: number;
  reset_at: string | null;
  enforcement: string;
  state: "ok" | "warning" | "critical" | "exceeded";
  group?: Record<string, string | null>;
}

/** GET /v1/customers/{id}/limits. */
export async function customerLimits(t: TestServer, customer: string): Promise<CustomerLimit[]> {
  const res = await t.api("GET", `/v1/customers/${customer}/limits`);
  expect(res.status, res.text).toBe(200);
  return res.body.data as CustomerLimit[];
}

/** The one entry of a limit in GET /v1/customers/{id}/limits (optionally of one group). */
export async function customerLimit(
  t: TestServer,
  customer: string,
  id: string,
  group?: Record<string, string | null>,
): Promise<CustomerLimit> {
  const all = (await customerLimits(t, customer)).filter(
    (l) => l.id === id && (group === undefined || JSON.stringify(l.group) === JSON.stringify(group)),
  );
  expect(all.length, `limit ${id} of ${customer}`).toBe(1);
  return all[0]!;
}

/** RFC 3339 UTC without milliseconds, as the API writes instants. */
export const iso = (ms: number) => new Date(ms).toISOString().replace(".000Z", "Z");

export async function putCustomer(t: TestServer, id: string, body: Record<string, unknown> = {}) {
  return put(t, `/v1/customers/${id}`, { name: id, ...body });
}
