import { TollgateApiError, TollgateUnavailableError } from "./errors.js";
import { Recorder, type RecorderOptions } from "./recorder.js";
import type {
  CheckEvent,
  CheckResult,
  CommitResult,
  ConcurrencyLimitBody,
  CustomerBody,
  CustomerLimitState,
  ErrorBody,
  EventInput,
  Json,
  LimitBody,
  MeterBody,
  MeterQuery,
  Page,
  PlanBody,
  RateLimitBody,
  ReleaseResult,
  UsageQuery,
} from "./types.js";

export type FailMode = "open" | "closed";

/** What the `onFailure` hook hears about: Tollgate was unreachable, slow or refused a queued item. */
export interface FailureInfo {
  /** check, reserve, commit, release, record (a batch flush) */
  operation: string;
  error: unknown;
  /** For check/reserve: the fail mode that decided the answer. */
  failMode?: FailMode;
  /** allowed / denied (check under a fail mode), queued (kept for retry), dropped (refused for good). */
  action: "allowed" | "denied" | "queued" | "dropped";
}

export interface TollgateOptions {
  /** @default process.env.TOLLGATE_URL, else "http://127.0.0.1:8787" */
  baseUrl?: string;
  /** A service (or admin) key. @default process.env.TOLLGATE_API_KEY */
  apiKey?: string;
  /** Deadline of each check, reserve, commit and release call; past it, the fail mode answers. @default 1000 */
  timeoutMs?: number;
  /** Deadline of the other API calls and of a batch flush. @default 10000 */
  requestTimeoutMs?: number;
  /**
   * The answer of a check when Tollgate is unreachable or slower than `timeoutMs`: `open` admits the call
   * (and its usage is recorded once Tollgate is back), `closed` denies it with code UNAVAILABLE.
   * @default "closed"
   */
  failMode?: FailMode;
  /** Called whenever a fail mode decides, or something is queued for retry or dropped. */
  onFailure?: (info: FailureInfo) => void;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Batching of `record` (and of commits queued while Tollgate was down). */
  batch?: RecorderOptions;
  /**
   * Flush what is buffered when the Node process is about to exit on its own ('beforeExit'). On signals,
   * call `await tollgate.close()` yourself; on edge runtimes, pass `tollgate.flush()` to `waitUntil`.
   * @default true
   */
  flushOnExit?: boolean;
}

export interface CallOptions {
  failMode?: FailMode;
  timeoutMs?: number;
}

const env = (name: string): string | undefined =>
  (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[name];

const ESTIMATES_MAX = 10_000;

export const newId = (prefix: string): string => `${prefix}_${globalThis.crypto.randomUUID()}`;

/** The Tollgate HTTP client. Works wherever `fetch` does (Node 20, Deno, Bun, edge runtimes). */
export class Tollgate {
  readonly baseUrl: string;
  private readonly apiKey: string | undefined;
  readonly timeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly failMode: FailMode;
  private readonly fetchFn: typeof fetch;
  private readonly onFailure: ((info: FailureInfo) => void) | undefined;
  /** Reservation id → what was estimated, so a commit that cannot reach Tollgate can still be recorded. */
  private readonly estimates = new Map<string, CheckEvent>();
  readonly recorder: Recorder;

  constructor(options: TollgateOptions = {}) {
    this.baseUrl = (options.baseUrl ?? env("TOLLGATE_URL") ?? "http://127.0.0.1:8787").replace(/\/+$/, "");
    this.apiKey = options.apiKey ?? env("TOLLGATE_API_KEY");
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.failMode = options.failMode ?? "closed";
    this.fetchFn = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.onFailure = options.onFailure;
    this.recorder = new Recorder(this, options.batch ?? {}, options.flushOnExit ?? true);
  }

  /** @internal */
  report(info: FailureInfo): void {
    try {
      this.onFailure?.(info);
    } catch {
      // a logging hook must not break metering
    }
  }

  // ---- HTTP ----------------------------------------------------------------------------------------

  /** One API call. Throws TollgateApiError (4xx, 501) or TollgateUnavailableError (network, timeout, 5xx). */
  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    options: { timeoutMs?: number; query?: Record<string, unknown> } = {},
  ): Promise<T> {
    let url = this.baseUrl + path;
    if (options.query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(options.query)) {
        if (v === undefined || v === null) continue;
        q.set(k, Array.isArray(v) ? v.join(",") : String(v));
      }
      const s = q.toString();
      if (s) url += `?${s}`;
    }
    const headers: Record<string, string> = {};
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const controller = new AbortController();
    const timeoutMs = options.timeoutMs ?? this.requestTimeoutMs;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    let res: Response;
    let text: string;
    try {
      res = await this.fetchFn(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: controller.signal,
      });
      text = await res.text();
    } catch (error) {
      throw new TollgateUnavailableError(
        timedOut
          ? `Tollgate did not answer ${method} ${path} within ${timeoutMs} ms`
          : `Tollgate is unreachable: ${(error as Error)?.message ?? error}`,
        error,
        timedOut,
      );
    } finally {
      clearTimeout(timer);
    }
    let parsed: unknown = null;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = null;
      }
    }
    if (res.status >= 500 && res.status !== 501) {
      throw new TollgateUnavailableError(`Tollgate answered ${res.status}`, parsed);
    }
    if (res.status >= 400) throw new TollgateApiError(res.status, parsed as ErrorBody | null, res.headers);
    return parsed as T;
  }

  // ---- check / reserve / commit / release ----------------------------------------------------------

  /**
   * Evaluates every limit that applies to the event, atomically; with `reserve`, holds the estimate until
   * `commit` or `release`. A denial is an answer (`allowed: false`), not an exception. When Tollgate is
   * unreachable or slow, the fail mode answers (`degraded: true`); an admitted call then gets a local
   * reservation whose commit is recorded once Tollgate is back.
   */
  async check(
    event: CheckEvent,
    options: CallOptions & { reserve?: boolean | { ttlSeconds?: number } } = {},
  ): Promise<CheckResult> {
    const reserve = options.reserve
      ? options.reserve === true
        ? {}
        : { ...(options.reserve.ttlSeconds !== undefined ? { ttl_seconds: options.reserve.ttlSeconds } : {}) }
      : undefined;
    const operation = reserve ? "reserve" : "check";
    try {
      const result = await this.request<CheckResult>(
        "POST",
        "/v1/check",
        { event, ...(reserve ? { reserve } : {}) },
        { timeoutMs: options.timeoutMs ?? this.timeoutMs },
      );
      if (result.reservation) this.remember(result.reservation.id, event);
      return result;
    } catch (error) {
      if (!(error instanceof TollgateUnavailableError)) throw error;
      const failMode = options.failMode ?? this.failMode;
      this.report({ operation, error, failMode, action: failMode === "open" ? "allowed" : "denied" });
      if (failMode === "closed") return { allowed: false, code: "UNAVAILABLE", limits: [], degraded: true };
      const result: CheckResult = { allowed: true, limits: [], degraded: true };
      if (reserve) {
        const id = newId("rsv_local");
        this.remember(id, event);
        const ttl = (reserve as { ttl_seconds?: number }).ttl_seconds ?? 300;
        result.reservation = { id, expires_at: new Date(Date.now() + ttl * 1000).toISOString() };
      }
      return result;
    }
  }

  /** `check` with a reservation. */
  reserve(event: CheckEvent, options: CallOptions & { ttlSeconds?: number } = {}): Promise<CheckResult> {
    return this.check(event, { ...options, reserve: { ttlSeconds: options.ttlSeconds } });
  }

  /**
   * Records the actual usage of a reservation and releases its hold (idempotent). When Tollgate cannot
   * be reached the commit is queued and retried (`state: "queued"`): the usage is never lost.
   */
  async commit(
    reservationId: string,
    event: Partial<EventInput> = {},
    options: CallOptions = {},
  ): Promise<CommitResult> {
    const estimate = this.estimates.get(reservationId);
    if (reservationId.startsWith("rsv_local_")) {
      if (!estimate) throw new Error(`unknown local reservation ${reservationId}`);
      const full = this.fullEvent(reservationId, estimate, event);
      this.estimates.delete(reservationId);
      this.recorder.enqueue(full);
      return { reservation: reservationId, state: "queued", event_id: full.id! };
    }
    try {
      const result = await this.request<CommitResult>(
        "POST",
        `/v1/reservations/${encodeURIComponent(reservationId)}/commit`,
        { event },
        { timeoutMs: options.timeoutMs ?? this.timeoutMs },
      );
      this.estimates.delete(reservationId);
      return result;
    } catch (error) {
      if (!(error instanceof TollgateUnavailableError)) throw error;
      this.report({ operation: "commit", error, action: "queued" });
      this.recorder.enqueueCommit(reservationId, event, estimate);
      this.estimates.delete(reservationId);
      return { reservation: reservationId, state: "queued", event_id: event.id ?? reservationId };
    }
  }

  /** Gives the hold back. Idempotent; a release that cannot reach Tollgate is left to the TTL. */
  async release(reservationId: string, options: CallOptions = {}): Promise<ReleaseResult> {
    this.estimates.delete(reservationId);
    if (reservationId.startsWith("rsv_local_")) return { reservation: reservationId, state: "released" };
    try {
      return await this.request<ReleaseResult>(
        "POST",
        `/v1/reservations/${encodeURIComponent(reservationId)}/release`,
        undefined,
        { timeoutMs: options.timeoutMs ?? this.timeoutMs },
      );
    } catch (error) {
      if (!(error instanceof TollgateUnavailableError)) throw error;
      this.report({ operation: "release", error, action: "dropped" });
      return { reservation: reservationId, state: "expires" };
    }
  }

  getReservation(id: string) {
    return this.request<Json>("GET", `/v1/reservations/${encodeURIComponent(id)}`);
  }

  // ---- recording -----------------------------------------------------------------------------------

  /**
   * Buffers an event (an id is given when it has none) and sends it in the next batch: by size, by
   * interval, on `flush()` and at exit. Retries keep the id, so a retried batch never counts twice.
   * Returns the event id.
   */
  record(event: EventInput): string {
    const full: EventInput = { ...event, id: event.id ?? newId("evt") };
    full.timestamp ??= new Date().toISOString();
    this.recorder.enqueue(full);
    return full.id!;
  }

  /** Sends everything buffered now; rejects with the error if Tollgate is unreachable (it stays buffered). */
  flush(): Promise<void> {
    return this.recorder.flush();
  }

  /** Flushes and stops the batch timer. */
  close(): Promise<void> {
    return this.recorder.close();
  }

  /** Sends events right away (no buffer): POST /v1/events. */
  sendEvents(events: EventInput[]) {
    return this.request<{ accepted: number; duplicates: number }>("POST", "/v1/events", { events });
  }

  // ---- the rest of the API -------------------------------------------------------------------------

  readonly customers = {
    put: (id: string, body: CustomerBody) => this.request<Json>("PUT", `/v1/customers/${enc(id)}`, body),
    get: (id: string) => this.request<Json>("GET", `/v1/customers/${enc(id)}`),
    list: (q: { cursor?: string; limit?: number } = {}) =>
      this.request<Page<Json>>("GET", "/v1/customers", undefined, { query: q }),
    limits: (id: string) => this.request<Page<CustomerLimitState>>("GET", `/v1/customers/${enc(id)}/limits`),
    usagePercent: (id: string) =>
      this.request<Page<{ id: string; percent_used: number; reset_at: string | null }>>(
        "GET",
        `/v1/customers/${enc(id)}/usage-percent`,
      ),
    createKey: (id: string, body: { name: string }) =>
      this.request<{ id: string; key: string }>("POST", `/v1/customers/${enc(id)}/keys`, body),
    listKeys: (id: string) => this.request<Page<Json>>("GET", `/v1/customers/${enc(id)}/keys`),
    entitlements: (id: string) => this.request<Json>("GET", `/v1/customers/${enc(id)}/entitlements`),
    overage: (id: string) => this.request<Json>("GET", `/v1/customers/${enc(id)}/overage`),
    deleteKey: (id: string, keyId: string) =>
      this.request<null>("DELETE", `/v1/customers/${enc(id)}/keys/${enc(keyId)}`),
  };

  readonly apiKeys = {
    create: (body: { name: string; role: "admin" | "service" }) =>
      this.request<{ id: string; key: string; role: string }>("POST", "/v1/api-keys", body),
    list: () => this.request<Page<Json>>("GET", "/v1/api-keys"),
    delete: (id: string) => this.request<null>("DELETE", `/v1/api-keys/${enc(id)}`),
  };

  readonly plans = {
    put: (id: string, body: PlanBody) => this.request<Json>("PUT", `/v1/plans/${enc(id)}`, body),
    get: (id: string) => this.request<Json>("GET", `/v1/plans/${enc(id)}`),
    list: (q: { cursor?: string; limit?: number } = {}) =>
      this.request<Page<Json>>("GET", "/v1/plans", undefined, { query: q }),
  };

  readonly meters = {
    put: (id: string, body: MeterBody) => this.request<Json>("PUT", `/v1/meters/${enc(id)}`, body),
    get: (id: string) => this.request<Json>("GET", `/v1/meters/${enc(id)}`),
    list: (q: { cursor?: string; limit?: number } = {}) =>
      this.request<Page<Json>>("GET", "/v1/meters", undefined, { query: q }),
    query: (id: string, q: MeterQuery = {}) =>
      this.request<
        Page<{
          window_start: string | null;
          window_end: string | null;
          value: number | string;
          groups: Record<string, string | null>;
        }>
      >("GET", `/v1/meters/${enc(id)}/query`, undefined, { query: { ...q } }),
  };

  readonly limits = limitGroup<LimitBody>(this, "/v1/limits");
  readonly rateLimits = limitGroup<RateLimitBody>(this, "/v1/rate-limits");
  readonly concurrencyLimits = limitGroup<ConcurrencyLimitBody>(this, "/v1/concurrency-limits");

  readonly balances = {
    get: (customer: string) => this.request<Json>("GET", `/v1/customers/${enc(customer)}/balance`),
    credit: (
      customer: string,
      body: {
        amount: number;
        idempotency_key: string;
        expires_at?: string;
        priority?: number;
        description?: string;
      },
    ) => this.request<Json>("POST", `/v1/customers/${enc(customer)}/balance/credits`, body),
    debit: (customer: string, body: { amount: number; idempotency_key: string; description?: string }) =>
      this.request<Json>("POST", `/v1/customers/${enc(customer)}/balance/debits`, body),
    setMinimum: (customer: string, body: { minimum_balance: number }) =>
      this.request<Json>("PUT", `/v1/customers/${enc(customer)}/balance`, body),
    transactions: (customer: string, q: { cursor?: string } = {}) =>
      this.request<Page<Json>>("GET", `/v1/customers/${enc(customer)}/balance/transactions`, undefined, {
        query: q,
      }),
  };

  readonly balanceRules = {
    put: (id: string, body: { meter: string; credits_per_unit: number; unit?: number }) =>
      this.request<Json>("PUT", `/v1/balance-rules/${enc(id)}`, body),
    get: (id: string) => this.request<Json>("GET", `/v1/balance-rules/${enc(id)}`),
    list: () => this.request<Page<Json>>("GET", "/v1/balance-rules"),
    delete: (id: string) => this.request<null>("DELETE", `/v1/balance-rules/${enc(id)}`),
  };

  readonly prices = {
    list: () => this.request<Page<Json>>("GET", "/v1/prices"),
    put: (model: string, body: Json) => this.request<Json>("PUT", `/v1/prices/${enc(model)}`, body),
    delete: (model: string) => this.request<null>("DELETE", `/v1/prices/${enc(model)}`),
    reprice: (body: Json) => this.request<Json>("POST", "/v1/prices/reprice", body),
  };

  readonly settings = {
    pricing: () => this.request<Json>("GET", "/v1/settings/pricing"),
    putPricing: (body: Json) => this.request<Json>("PUT", "/v1/settings/pricing", body),
    modelClasses: () => this.request<Json>("GET", "/v1/settings/model-classes"),
    putModelClasses: (body: Json) => this.request<Json>("PUT", "/v1/settings/model-classes", body),
  };

  readonly usage = {
    get: (q: UsageQuery = {}) => this.request<Page<Json>>("GET", "/v1/usage", undefined, { query: { ...q } }),
    summary: (q: Record<string, string | undefined> = {}) =>
      this.request<Json>("GET", "/v1/usage/summary", undefined, { query: q }),
    workflowRuns: (workflow: string, q: { from?: string; to?: string } = {}) =>
      this.request<Page<Json>>("GET", `/v1/workflows/${enc(workflow)}/runs`, undefined, { query: q }),
  };

  readonly webhooks = {
    create: (body: { url: string; events: string[] }) =>
      this.request<{ id: string; secret: string }>("POST", "/v1/webhooks", body),
    list: () => this.request<Page<Json>>("GET", "/v1/webhooks"),
    get: (id: string) => this.request<Json>("GET", `/v1/webhooks/${enc(id)}`),
    delete: (id: string) => this.request<null>("DELETE", `/v1/webhooks/${enc(id)}`),
    rotateSecret: (id: string) =>
      this.request<{ secret: string }>("POST", `/v1/webhooks/${enc(id)}/rotate-secret`),
    deliveries: (id: string) => this.request<Page<Json>>("GET", `/v1/webhooks/${enc(id)}/deliveries`),
    redeliver: (id: string, deliveryId: string) =>
      this.request<Json>("POST", `/v1/webhooks/${enc(id)}/deliveries/${enc(deliveryId)}/redeliver`),
  };

  readonly alerts = {
    list: (q: Record<string, string | undefined> = {}) =>
      this.request<Page<Json>>("GET", "/v1/alerts", undefined, { query: q }),
  };

  audit(q: Record<string, string | undefined> = {}) {
    return this.request<Page<Json>>("GET", "/v1/audit", undefined, { query: q });
  }

  readonly simulations = {
    create: (body: { config: Json; from: string; to: string; customers?: string[] }) =>
      this.request<{ id: string }>("POST", "/v1/simulations", body),
    get: (id: string) => this.request<Json>("GET", `/v1/simulations/${enc(id)}`),
  };

  health() {
    return this.request<{ status: string }>("GET", "/health");
  }

  // ---- helpers -------------------------------------------------------------------------------------

  private remember(id: string, event: CheckEvent): void {
    if (this.estimates.size >= ESTIMATES_MAX) {
      const oldest = this.estimates.keys().next().value;
      if (oldest !== undefined) this.estimates.delete(oldest);
    }
    this.estimates.set(id, event);
  }

  /** @internal The event a commit records: the actual fields over the estimate's. */
  fullEvent(reservationId: string, estimate: CheckEvent, actual: Partial<EventInput>): EventInput {
    return {
      id: actual.id ?? reservationId,
      type: actual.type ?? estimate.type,
      customer: actual.customer ?? estimate.customer,
      timestamp: actual.timestamp ?? new Date().toISOString(),
      values: actual.values ?? estimate.values ?? {},
      dimensions: actual.dimensions ?? estimate.dimensions ?? {},
    };
  }
}

const enc = encodeURIComponent;

function limitGroup<B>(client: Tollgate, base: string) {
  type Where = { plan?: string; customer?: string };
  return {
    put: (id: string, body: B) => client.request<Json>("PUT", `${base}/${enc(id)}`, body),
    get: (id: string, where: Where = {}) =>
      client.request<Json>("GET", `${base}/${enc(id)}`, undefined, { query: where }),
    list: (where: Where = {}) => client.request<Page<Json>>("GET", base, undefined, { query: where }),
    delete: (id: string, where: Where = {}) =>
      client.request<null>("DELETE", `${base}/${enc(id)}`, undefined, { query: where }),
  };
}
