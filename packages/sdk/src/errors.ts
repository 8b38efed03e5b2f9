import type { CheckResult, DenialCode, ErrorBody } from "./types.js";

/** Tollgate answered with an error (4xx, or a 5xx that is not an outage). */
export class TollgateApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown> | undefined;
  readonly headers: Headers | undefined;
  constructor(status: number, body: ErrorBody | null, headers?: Headers) {
    super(body?.error?.message ?? `Tollgate answered ${status}`);
    this.name = "TollgateApiError";
    this.status = status;
    this.code = body?.error?.code ?? "UNKNOWN";
    this.details = body?.error?.details;
    this.headers = headers;
  }
}

/** Tollgate could not be reached, did not answer within the timeout, or answered 5xx. */
export class TollgateUnavailableError extends Error {
  override readonly cause: unknown;
  readonly timedOut: boolean;
  constructor(message: string, cause?: unknown, timedOut = false) {
    super(message);
    this.name = "TollgateUnavailableError";
    this.cause = cause;
    this.timedOut = timedOut;
  }
}

const STATUS: Record<DenialCode, number> = {
  RATE_LIMIT_EXCEEDED: 429,
  LIMIT_EXCEEDED: 429,
  CONCURRENCY_LIMIT_EXCEEDED: 429,
  INSUFFICIENT_BALANCE: 402,
  FEATURE_NOT_INCLUDED: 403,
  UNAVAILABLE: 503,
};

export const statusOfDenial = (code: DenialCode | undefined): number => (code ? STATUS[code] : 429);

/**
 * A call that a limit denied (thrown by the LLM wrappers before the provider is called). `body` is the
 * API.md error shape; `retryAfter` in seconds when Tollgate can tell.
 */
export class TollgateLimitError extends Error {
  readonly status: number;
  readonly code: DenialCode;
  readonly retryAfter: number | undefined;
  readonly result: CheckResult;
  constructor(result: CheckResult) {
    const code = result.code ?? "LIMIT_EXCEEDED";
    super(`Tollgate denied the call: ${code}`);
    this.name = "TollgateLimitError";
    this.code = code;
    this.status = statusOfDenial(code);
    this.result = result;
    const denying = result.limits.find((l) => !l.allowed);
    this.retryAfter = denying?.retry_after;
  }
}
