import { expect } from "vitest";
import { type ApiResponse, call, expectError, type TestServer } from "../support/server.js";

/** A client bound to one key of one server: `as(key)("GET", "/v1/…")`. */
export type Client = (method: string, path: string, body?: unknown) => Promise<ApiResponse>;

export const as =
  (t: TestServer, key: string): Client =>
  (method, path, body) =>
    call(t.url, method, path, body, { key });

/** Creates a workspace in-process (as `serve` would) and returns a client with its admin key. */
export async function newWorkspace(t: TestServer, id: string): Promise<{ key: string; api: Client }> {
  const { adminKey } = await t.server.engine.bootstrap(id);
  if (!adminKey) throw new Error(`workspace ${id} already had an admin key`);
  return { key: adminKey, api: as(t, adminKey) };
}

/** 400 INVALID_REQUEST whose details name `field` (and `index`, when given). */
export function expectInvalid(res: ApiResponse, field: string, index?: number) {
  const error = expectError(res, 400, "INVALID_REQUEST");
  expect(error.details?.field, res.text).toBe(field);
  if (index !== undefined) expect(error.details?.index, res.text).toBe(index);
  return error;
}

/** Any answer: never a 5xx, and every error in the API.md shape with a known code. */
export function expectWellFormed(res: ApiResponse): void {
  expect(res.status, res.text).toBeLessThan(500);
  if (res.status < 400) return;
  expect(res.body, res.text).toMatchObject({
    error: { code: expect.any(String), message: expect.any(String), status: res.status },
  });
  expect(Object.keys(res.body)).toEqual(["error"]);
  const allowed = ["code", "message", "details", "status"];
  for (const k of Object.keys(res.body.error)) expect(allowed, res.text).toContain(k);
  if (res.body.error.details !== undefined) expect(typeof res.body.error.details).toBe("object");
  const statusOf: Record<string, number> = {
    INVALID_REQUEST: 400,
    UNAUTHORIZED: 401,
    INSUFFICIENT_BALANCE: 402,
    FORBIDDEN: 403,
    FEATURE_NOT_INCLUDED: 403,
    NOT_FOUND: 404,
    CONFLICT: 409,
    PAYLOAD_TOO_LARGE: 413,
    RATE_LIMIT_EXCEEDED: 429,
    LIMIT_EXCEEDED: 429,
    CONCURRENCY_LIMIT_EXCEEDED: 429,
    UNAVAILABLE: 503,
  };
  expect(statusOf[res.body.error.code], res.text).toBe(res.status);
}

export interface EventBody {
  id: string;
  type: string;
  customer: string;
  timestamp?: string;
  values?: Record<string, number>;
  dimensions?: Record<string, string>;
}

export const iso = (ms: number) => new Date(ms).toISOString();

/** The value of one meter for one customer over all time (0 when no row comes back). */
export async function meterTotal(api: Client, meter: string, customer: string): Promise<number> {
  const res = await api("GET", `/v1/meters/${meter}/query?customer=${encodeURIComponent(customer)}`);
  expect(res.status, res.text).toBe(200);
  expect(res.body.data.length, res.text).toBeLessThanOrEqual(1);
  return res.body.data.length === 0 ? 0 : Number(res.body.data[0].value);
}
