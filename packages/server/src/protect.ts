import { evaluate, formatInstant, type RateLimitConfig, RateLimitTable, TollgateError } from "@tollgate/core";
import type { FastifyReply } from "fastify";

export interface ApiRateLimitOptions {
  /**
   * Requests each API key may make per window (token bucket: up to `limit` at once, refilled evenly).
   * @default 5000
   */
  limit: number;
  /** @default 1 */
  windowSeconds: number;
}

export const DEFAULT_API_RATE_LIMIT: ApiRateLimitOptions = { limit: 5000, windowSeconds: 1 };

/**
 * The API protects itself per key: every /v1 answer carries X-RateLimit-* and the IETF RateLimit /
 * RateLimit-Policy fields (draft-ietf-httpapi-ratelimit-headers); past the limit, 429 with Retry-After.
 */
export class ApiProtection {
  private readonly table: RateLimitTable;
  private readonly config: RateLimitConfig;
  private readonly policy: string;
  private lastSweep = 0;

  constructor(private readonly options: ApiRateLimitOptions) {
    this.config = { algorithm: "token_bucket", limit: options.limit, windowMs: options.windowSeconds * 1000 };
    this.table = new RateLimitTable(this.config);
    this.policy = `"api";q=${options.limit};w=${options.windowSeconds}`;
  }

  admit(keyId: string, reply: FastifyReply): void {
    const now = Date.now();
    if (now - this.lastSweep > 10_000) {
      this.lastSweep = now;
      this.table.sweep(now);
    }
    const { state, decision } = evaluate(this.config, this.table.get(keyId), { cost: 1 }, now);
    const resetAfter = Math.max(0, Math.ceil((decision.resetAt - now) / 1000));
    reply.header("X-RateLimit-Limit", decision.limit);
    reply.header("X-RateLimit-Remaining", decision.remaining);
    reply.header("X-RateLimit-Reset", Math.ceil(decision.resetAt / 1000));
    reply.header("X-RateLimit-Reset-After", resetAfter);
    reply.header("RateLimit-Policy", this.policy);
    reply.header("RateLimit", `"api";r=${decision.remaining};t=${resetAfter}`);
    if (decision.allowed) {
      this.table.set(keyId, state);
      return;
    }
    const retryAfter = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
    reply.header("Retry-After", retryAfter);
    throw new TollgateError("RATE_LIMIT_EXCEEDED", "API rate limit exceeded", {
      limit: this.options.limit,
      remaining: 0,
      reset_at: formatInstant(Math.ceil(decision.resetAt / 1000) * 1000),
      retry_after: retryAfter,
    });
  }
}
