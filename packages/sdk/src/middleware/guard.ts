import type { CallOptions, Tollgate } from "../client.js";
import { denialResponse, rateLimitHeaders } from "../headers.js";
import type { Dimensions, ErrorBody, Values } from "../types.js";

/** Who a request is for. `null` lets the request through unchecked (health checks, public pages). */
export interface Identity {
  customer: string;
  /** The caller's key id, for limits with `scope: key` (recorded as `dimensions.key`). */
  key?: string;
}

export interface GuardOptions<Req> {
  client: Tollgate;
  /**
   * Derives the customer (and key) from the request.
   * @default the `x-tollgate-customer` and `x-tollgate-key` request headers
   */
  identify?: (req: Req) => Identity | null | undefined | Promise<Identity | null | undefined>;
  /** @default "http.request" */
  eventType?: string;
  /** The usage the request is expected to bring (estimates), e.g. `{ requests: 1 }`. @default {} */
  values?: (req: Req) => Values;
  /** More dimensions (route, feature…). */
  dimensions?: (req: Req) => Dimensions;
  /**
   * Hold the request's usage (and a concurrency slot) while it runs, and commit it when the response
   * finishes (released when the handler answers 5xx). Without it, only rate limits and quotas are checked.
   * @default false
   */
  reserve?: boolean | { ttlSeconds?: number };
  /** Per-middleware fail mode and timeout (defaults: the client's). */
  failMode?: CallOptions["failMode"];
  timeoutMs?: number;
}

export type GuardOutcome =
  | { allowed: true; headers: Record<string, string>; finish: (status: number) => void }
  | { allowed: false; headers: Record<string, string>; status: number; body: ErrorBody }
  | { allowed: true; skipped: true; headers: Record<string, string>; finish: (status: number) => void };

const noop = () => {};

/** The framework-neutral part of every middleware: identify, check (and reserve), answer. */
export async function guard<Req>(
  options: GuardOptions<Req>,
  req: Req,
  header: (name: string) => string | undefined,
): Promise<GuardOutcome> {
  const who = options.identify
    ? await options.identify(req)
    : header("x-tollgate-customer")
      ? { customer: header("x-tollgate-customer")!, key: header("x-tollgate-key") }
      : null;
  if (!who) return { allowed: true, skipped: true, headers: {}, finish: noop };
  const dimensions: Dimensions = { ...options.dimensions?.(req) };
  if (who.key !== undefined) dimensions.key = who.key;
  const event = {
    type: options.eventType ?? "http.request",
    customer: who.customer,
    values: options.values?.(req) ?? {},
    dimensions,
  };
  const result = await options.client.check(event, {
    ...(options.reserve
      ? { reserve: options.reserve === true ? true : { ttlSeconds: options.reserve.ttlSeconds } }
      : {}),
    ...(options.failMode ? { failMode: options.failMode } : {}),
    ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
  });
  const headers = rateLimitHeaders(result);
  if (!result.allowed) return { allowed: false, headers, ...denialResponse(result) };
  const reservation = result.reservation?.id;
  let finished = false;
  return {
    allowed: true,
    headers,
    finish: (status: number) => {
      if (!reservation || finished) return;
      finished = true;
      const done =
        status >= 500 ? options.client.release(reservation) : options.client.commit(reservation, {});
      done.catch(() => {
        // commit queues itself when Tollgate is down; other errors are the hook's to report
      });
    },
  };
}
