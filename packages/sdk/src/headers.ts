import { statusOfDenial } from "./errors.js";
import type { CheckResult, ErrorBody, LimitOutcome } from "./types.js";

const resetAfterOf = (l: LimitOutcome, now: number): number =>
  l.reset_at === null ? 0 : Math.max(0, Math.ceil((Date.parse(l.reset_at) - now) / 1000));

/**
 * The limit a client most needs to hear about: the first that denies, else the one with the fewest
 * remaining (rate limits before quotas on a tie, as the API lists them).
 */
export function bindingLimit(result: CheckResult): LimitOutcome | undefined {
  const denying = result.limits.find((l) => !l.allowed);
  if (denying) return denying;
  let best: LimitOutcome | undefined;
  for (const l of result.limits) {
    if (l.kind === "concurrency" && result.allowed) continue;
    if (!best || l.remaining < best.remaining) best = l;
  }
  return best;
}

/**
 * X-RateLimit-Limit / -Remaining / -Reset (unix seconds) / -Reset-After (seconds), the IETF RateLimit
 * and RateLimit-Policy fields (draft-ietf-httpapi-ratelimit-headers-10), and Retry-After on a denial.
 */
export function rateLimitHeaders(result: CheckResult, now = Date.now()): Record<string, string> {
  const headers: Record<string, string> = {};
  const binding = bindingLimit(result);
  if (binding) {
    const resetAfter = resetAfterOf(binding, now);
    const reset =
      binding.reset_at === null ? Math.ceil(now / 1000) : Math.ceil(Date.parse(binding.reset_at) / 1000);
    headers["X-RateLimit-Limit"] = String(binding.limit);
    headers["X-RateLimit-Remaining"] = String(binding.remaining);
    headers["X-RateLimit-Reset"] = String(reset);
    headers["X-RateLimit-Reset-After"] = String(resetAfter);
    headers.RateLimit = `"${binding.id}";r=${binding.remaining};t=${resetAfter}`;
    headers["RateLimit-Policy"] = result.limits
      .filter((l) => l.kind !== "concurrency")
      .map((l) => `"${l.id}";q=${l.limit}`)
      .join(", ");
    if (!headers["RateLimit-Policy"]) delete headers["RateLimit-Policy"];
  }
  if (!result.allowed) headers["Retry-After"] = String(retryAfterOf(result, now));
  return headers;
}

export function retryAfterOf(result: CheckResult, now = Date.now()): number {
  const binding = bindingLimit(result);
  if (!binding) return 1;
  return Math.max(1, binding.retry_after ?? resetAfterOf(binding, now));
}

const MESSAGES: Record<string, string> = {
  RATE_LIMIT_EXCEEDED: "rate limit exceeded",
  LIMIT_EXCEEDED: "usage limit exceeded",
  CONCURRENCY_LIMIT_EXCEEDED: "too many requests in flight",
  INSUFFICIENT_BALANCE: "insufficient balance",
  FEATURE_NOT_INCLUDED: "the plan does not include this feature",
  UNAVAILABLE: "usage limits cannot be checked right now",
};

/** A denial as the API.md error shape, with its HTTP status (429, 402, 403, or 503 when failing closed). */
export function denialResponse(result: CheckResult, now = Date.now()): { status: number; body: ErrorBody } {
  const code = result.code ?? "LIMIT_EXCEEDED";
  const status = statusOfDenial(code);
  const binding = bindingLimit(result);
  const details: Record<string, unknown> = {};
  if (binding) {
    details.limit = binding.limit;
    details.remaining = binding.remaining;
    details.reset_at = binding.reset_at;
  }
  details.retry_after = retryAfterOf(result, now);
  return { status, body: { error: { code, message: MESSAGES[code] ?? code, details, status } } };
}
