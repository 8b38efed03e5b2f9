/**
 * The error catalogue: every error a client or the environment can cause, with its HTTP status.
 * The API answers all of them in one shape: {"error": {code, message, details, status}}.
 */
export const errorCatalogue = {
  INVALID_REQUEST: { status: 400, retryable: false },
  UNAUTHORIZED: { status: 401, retryable: false },
  INSUFFICIENT_BALANCE: { status: 402, retryable: false },
  FORBIDDEN: { status: 403, retryable: false },
  FEATURE_NOT_INCLUDED: { status: 403, retryable: false },
  NOT_FOUND: { status: 404, retryable: false },
  CONFLICT: { status: 409, retryable: false },
  PAYLOAD_TOO_LARGE: { status: 413, retryable: false },
  RATE_LIMIT_EXCEEDED: { status: 429, retryable: true },
  LIMIT_EXCEEDED: { status: 429, retryable: true },
  CONCURRENCY_LIMIT_EXCEEDED: { status: 429, retryable: true },
  INTERNAL: { status: 500, retryable: true },
  UNAVAILABLE: { status: 503, retryable: true },
} as const satisfies Record<string, { status: number; retryable: boolean }>;

export type ErrorCode = keyof typeof errorCatalogue;

export type ErrorDetails = Record<string, unknown>;

/** An operating error: something a client or the environment caused. Never used for bugs. */
export class TollgateError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: ErrorDetails | undefined;

  constructor(code: ErrorCode, message: string, details?: ErrorDetails) {
    super(message);
    this.name = "TollgateError";
    this.code = code;
    this.status = errorCatalogue[code].status;
    this.details = details;
  }

  toBody(): { error: { code: ErrorCode; message: string; details?: ErrorDetails; status: number } } {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.details ? { details: this.details } : {}),
        status: this.status,
      },
    };
  }
}

export const invalid = (message: string, details?: ErrorDetails) =>
  new TollgateError("INVALID_REQUEST", message, details);
export const notFound = (what: string, id: string) =>
  new TollgateError("NOT_FOUND", `${what} not found`, { id });
export const conflict = (message: string, details?: ErrorDetails) =>
  new TollgateError("CONFLICT", message, details);

/** For states that cannot happen unless Tollgate itself is wrong. */
export function assert(condition: unknown, message = "assertion failed"): asserts condition {
  if (!condition) throw new Error(`Tollgate invariant violated: ${message}`);
}
