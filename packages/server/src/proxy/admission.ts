import {
  type CheckResult,
  type Engine,
  type ErrorCode,
  formatInstant,
  type LimitOutcome,
  TollgateError,
} from "@tollgate/core";

/** Values whose meaning per call the proxy knows; a meter over anything else (cost…) is opaque to it. */
const TOKEN_VALUES = new Set(["tokens_in", "tokens_out", "cached_tokens_in", "reasoning_tokens"]);
/** Halvings tried when an opaque limit (a balance, a cost quota) refuses the output estimate. */
const SHRINK_STEPS_MAX = 12;

export interface Admission {
  result: CheckResult;
  reservationId: string;
  /** Output tokens held by the reservation. */
  heldOut: number;
  /**
   * Output tokens the call may produce before a hard limit runs out (Infinity when none bounds it):
   * the held tokens plus what token quotas still have room for.
   */
  room: number;
  /** The code to end a stream with when it reaches `room`. */
  cutCode: ErrorCode;
}

interface Room {
  /** Output tokens the limit allows beyond the values already counted in `remaining`. */
  extra: number;
  code: ErrorCode;
  /** False for limits the proxy cannot convert to tokens (balances, cost quotas). */
  analysable: boolean;
}

const DENIAL_CODES_SHRINKABLE = new Set<ErrorCode | undefined>(["LIMIT_EXCEEDED", "INSUFFICIENT_BALANCE"]);

/**
 * Checks and reserves a call. The output estimate is what the request allows (or the default); when
 * only quotas or a balance refuse that much, the call is admitted with the room that is left (the
 * reservation holds it, so concurrent calls cannot spend it twice) and the stream is cut there.
 */
export async function admit(
  engine: Engine,
  workspaceId: string,
  event: {
    type: string;
    customer: string;
    values: Record<string, number>;
    dimensions: Record<string, string>;
  },
  wantOut: number,
  ttlSeconds: number,
): Promise<{ ok: true; admission: Admission } | { ok: false; result: CheckResult }> {
  const rooms = await roomCalculator(engine, workspaceId, event);
  let out = wantOut;
  let result: CheckResult | undefined;
  for (let step = 0; step <= SHRINK_STEPS_MAX; step++) {
    result = await engine.check(workspaceId, {
      event: { ...event, values: { ...event.values, tokens_out: out } },
      reserve: { ttl_seconds: ttlSeconds },
    });
    if (result.allowed) break;
    const denying = result.limits.filter((l) => !l.allowed);
    if (
      !DENIAL_CODES_SHRINKABLE.has(result.code) ||
      denying.some((l) => l.kind !== "quota" && l.kind !== "balance")
    )
      return { ok: false, result };
    // Token quotas say exactly how much room is left; for the others, try half as much.
    let analytic = Number.POSITIVE_INFINITY;
    let opaque = false;
    for (const l of denying) {
      const r = rooms(l, true);
      if (r.analysable) analytic = Math.min(analytic, r.extra);
      else opaque = true;
    }
    let next = opaque ? Math.min(Math.floor(out / 2), analytic) : analytic;
    next = Math.min(next, out - 1);
    if (next <= 0) return { ok: false, result };
    out = next;
  }
  if (!result?.allowed || !result.reservation) return { ok: false, result: result! };
  let room = Number.POSITIVE_INFINITY;
  let cutCode: ErrorCode = "LIMIT_EXCEEDED";
  for (const l of result.limits) {
    if (l.enforcement !== "hard" || (l.kind !== "quota" && l.kind !== "balance")) continue;
    const r = rooms(l, false);
    const bound = r.analysable ? out + r.extra : out;
    if (bound < room) {
      room = bound;
      cutCode = r.code;
    }
  }
  return {
    ok: true,
    admission: { result, reservationId: result.reservation.id, heldOut: out, room, cutCode },
  };
}

/**
 * For each limit of a check, how many more output tokens it allows: a `sum` quota over token values
 * converts its remaining amount to output tokens (minus, when it was exceeded, what the rest of the
 * estimate takes); a `count` quota never limits tokens.
 */
async function roomCalculator(
  engine: Engine,
  workspaceId: string,
  event: { customer: string; values: Record<string, number> },
): Promise<(l: LimitOutcome, denied: boolean) => Room> {
  const book = await engine.book.get(workspaceId);
  const customer = await engine.customerContext(workspaceId, event.customer);
  const quotas = book.effective(event.customer, customer.plan).quotas;
  return (l, denied) => {
    if (l.kind === "balance") return { extra: 0, code: "INSUFFICIENT_BALANCE", analysable: false };
    const limit = quotas.find((q) => q.id === l.id);
    const meter = limit ? book.meters.get(limit.meter) : undefined;
    if (!meter) return { extra: 0, code: "LIMIT_EXCEEDED", analysable: false };
    if (meter.aggregation === "count")
      return { extra: Number.POSITIVE_INFINITY, code: "LIMIT_EXCEEDED", analysable: true };
    if (meter.aggregation !== "sum" || meter.value.some((v) => !TOKEN_VALUES.has(v)))
      return { extra: 0, code: "LIMIT_EXCEEDED", analysable: false };
    const perOut = meter.value.filter((v) => v === "tokens_out").length;
    if (perOut === 0) return { extra: Number.POSITIVE_INFINITY, code: "LIMIT_EXCEEDED", analysable: true };
    // A denied check reports the room before the request; an admitted one, after it.
    let available = l.remaining;
    if (denied) for (const v of meter.value) if (v !== "tokens_out") available -= event.values[v] ?? 0;
    return { extra: Math.max(0, Math.floor(available / perOut)), code: "LIMIT_EXCEEDED", analysable: true };
  };
}

// ---- answers ---------------------------------------------------------------------------------------

const resetAfterOf = (l: LimitOutcome, now: number) =>
  l.resetAt === null ? 0 : Math.max(0, Math.ceil((l.resetAt - now) / 1000));

function bindingLimit(result: CheckResult): LimitOutcome | undefined {
  const denying = result.limits.find((l) => !l.allowed);
  if (denying) return denying;
  let best: LimitOutcome | undefined;
  for (const l of result.limits) {
    if (l.kind === "concurrency") continue;
    if (!best || l.remaining < best.remaining) best = l;
  }
  return best;
}

/** X-RateLimit-*, RateLimit and RateLimit-Policy for a check (and Retry-After on a denial), as API.md. */
export function rateLimitHeaders(result: CheckResult, now: number): Record<string, string> {
  const headers: Record<string, string> = {};
  const binding = bindingLimit(result);
  if (binding) {
    const resetAfter = resetAfterOf(binding, now);
    headers["X-RateLimit-Limit"] = String(binding.limit);
    headers["X-RateLimit-Remaining"] = String(binding.remaining);
    headers["X-RateLimit-Reset"] = String(Math.ceil((binding.resetAt ?? now) / 1000));
    headers["X-RateLimit-Reset-After"] = String(resetAfter);
    headers.RateLimit = `"${binding.id}";r=${binding.remaining};t=${resetAfter}`;
    const policy = result.limits
      .filter((l) => l.kind !== "concurrency")
      .map((l) => `"${l.id}";q=${l.limit}`)
      .join(", ");
    if (policy) headers["RateLimit-Policy"] = policy;
  }
  if (!result.allowed) headers["Retry-After"] = String(retryAfterOf(result, now));
  return headers;
}

function retryAfterOf(result: CheckResult, now: number): number {
  const b = bindingLimit(result);
  if (!b) return 1;
  return Math.max(1, b.retryAfterMs !== null ? Math.ceil(b.retryAfterMs / 1000) : resetAfterOf(b, now));
}

const MESSAGES: Partial<Record<ErrorCode, string>> = {
  RATE_LIMIT_EXCEEDED: "rate limit exceeded",
  LIMIT_EXCEEDED: "usage limit exceeded",
  CONCURRENCY_LIMIT_EXCEEDED: "too many requests in flight",
  INSUFFICIENT_BALANCE: "insufficient balance",
  FEATURE_NOT_INCLUDED: "the plan does not include this feature",
};

/** The denial as a TollgateError: the API.md error shape, 429 / 402 / 403. */
export function denialError(result: CheckResult, now: number): TollgateError {
  const code = result.code ?? "LIMIT_EXCEEDED";
  const b = bindingLimit(result);
  return new TollgateError(code, MESSAGES[code] ?? "denied", {
    ...(b
      ? {
          limit: b.limit,
          remaining: b.remaining,
          reset_at: b.resetAt === null ? null : formatInstant(b.resetAt),
        }
      : {}),
    retry_after: retryAfterOf(result, now),
  });
}
