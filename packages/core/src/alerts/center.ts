import { canonicalJson } from "../canonical.js";
import type { Clock } from "../clock.js";
import type { LimitBook } from "../engine/book.js";
import type { CheckResult, CustomerContext, UsageChange, UsageObserver } from "../engine/limiter.js";
import { invalid, notFound } from "../errors.js";
import type { LedgerView } from "../ledger/types.js";
import { bounds } from "../limits.js";
import { createAccumulator, meterMatches } from "../meter/meter.js";
import { DAY_MS, HOUR_MS, windowStartUtc } from "../period/calendar.js";
import type { DeliveryAttempt, DeliveryRecord, DeliveryState, Store, WebhookRecord } from "../ports/store.js";
import { formatPicoUsd } from "../pricing/money.js";
import { type QuotaLimit, scopeTag } from "../quota/definitions.js";
import type { MeterDef, UsageEvent } from "../types.js";
import { type LevelReached, levelsReached } from "./levels.js";
import {
  ALERT_TYPES,
  type Alert,
  type AlertWindow,
  type BalanceLowInput,
  balanceLowAlert,
  type Hash,
  isAlertType,
  limitAlert,
  rollingAlertWindow,
  usageSummaryAlert,
} from "./payload.js";

export interface AlertCenterDeps {
  store: Store;
  clock: Clock;
  /** Hex digest for deterministic alert ids (SHA-256 in the server). */
  hash: Hash;
  /** Unique ids with a prefix ("dlv_…", "wh_…"). */
  newId: (prefix: string) => string;
  book: LimitBook;
  customerContext: (workspaceId: string, id: string) => Promise<CustomerContext>;
  counterUsage: (
    workspaceId: string,
    customer: CustomerContext,
    limit: QuotaLimit,
    meter: MeterDef,
    groupKey: string,
  ) => Promise<{ used: number; window: AlertWindow | null }>;
}

export interface WebhookInput {
  url: string;
  events: string[];
  description?: string | null;
}

/** Bounds of the alert and webhook API (see limits.ts for the rest). */
export const alertBounds = {
  /** Endpoints per workspace. */
  webhooksMax: 100,
  /** Length of an endpoint URL. */
  webhookUrlLengthMax: 2_048,
  /** Alert ids remembered as raised, per process, before the memo starts over (the store dedupes anyway). */
  raisedMemoMax: 100_000,
  /** How long a rotated-out secret keeps signing, by default. */
  previousSecretGraceMs: 24 * 3_600_000,
} as const;

/**
 * Raises alerts and keeps webhook endpoints. The limiter tells it of every quota counter a commit
 * changes (UsageObserver); it works out which levels are reached and stores each new alert together
 * with its deliveries (the outbox) in one transaction. Alert ids are deterministic, so raising is
 * idempotent: a level is raised once per limit, subject, group and window however often usage is
 * re-evaluated (after a restart too). Delivering is the server's webhook worker's job.
 */
export class AlertCenter implements UsageObserver {
  private readonly raised = new Set<string>();
  /** Identities of limit levels known raised, as plain strings (see raiseLevel). */
  private readonly raisedLevels = new Set<string>();
  /** Soft/shadow quota windows a check already reported past their amount. */
  private readonly checkedPast = new Set<string>();
  private readonly raising = new Map<string, Promise<boolean>>();
  private readonly pending = new Set<Promise<unknown>>();
  private readonly endpoints = new Map<string, Promise<WebhookRecord[]>>();
  private lastDaily: number | null = null;
  private lastWeekly: number | null = null;
  private summarizing: Promise<number> | null = null;
  /** Called after an alert with at least one delivery is stored (the worker then polls at once). */
  onDeliveries: () => void = () => {};
  /** Yields to other work between the hours of a usage summary's scan (the server: setImmediate). */
  pause: () => Promise<void> = () => Promise.resolve();
  /** Failures of background raising (the store was unavailable): reported, retried at the next change. */
  onError: (error: unknown) => void = () => {};

  constructor(private readonly deps: AlertCenterDeps) {}

  // ---- raising ------------------------------------------------------------------------------------

  onUsage(workspaceId: string, change: UsageChange): void {
    if (change.limit.amount < 0) return;
    if (change.used !== null) {
      this.evaluate(workspaceId, change, change.used, change.window, "usage");
      return;
    }
    // The counter is not in memory (no check has needed it yet): load it, off the commit path.
    this.track(
      this.deps
        .counterUsage(workspaceId, change.customer, change.limit, change.meter, change.groupKey)
        .then(({ used, window }) => this.evaluate(workspaceId, change, used, window, "usage")),
    );
  }

  /**
   * The check path: a soft or shadow quota that let a request past its amount raises
   * `limit.exceeded` (trigger "check"), the same alert committed usage would raise later.
   */
  onCheck(workspaceId: string, customer: CustomerContext, result: CheckResult): void {
    for (const outcome of result.limits) {
      if (outcome.kind !== "quota" || !outcome.exceeded || outcome.enforcement === "hard") continue;
      const book = this.deps.book.peek(workspaceId);
      const limit = book
        ?.effective(customer.id, customer.plan)
        .quotas.find((q) => q.id === outcome.id && q.amount === outcome.limit);
      const meter = limit && book?.meters.get(limit.meter);
      if (!limit || !meter) continue;
      const group = outcome.group ?? {};
      const groupKey = limit.groupBy.length === 0 ? "{}" : canonicalGroup(limit, group);
      const used = outcome.used ?? 0;
      // A calendar window is told by its end (the outcome's reset_at); a rolling one by its span.
      const windowTag =
        typeof limit.period === "object"
          ? rollingAlertWindow(limit.period.rolling_seconds, this.deps.clock.now()).start
          : outcome.resetAt;
      const seen = `${workspaceId}\u0001${scopeTag(limit.scope)}\u0001${limit.id}\u0001${customer.id}\u0001${groupKey}\u0001${windowTag}`;
      if (this.checkedPast.has(seen)) continue;
      if (this.checkedPast.size >= alertBounds.raisedMemoMax) this.checkedPast.clear();
      this.checkedPast.add(seen);
      this.track(
        this.deps.counterUsage(workspaceId, customer, limit, meter, groupKey).then(({ window }) => {
          const level: LevelReached = { type: "limit.exceeded", threshold: 100 };
          this.raiseLevel(workspaceId, limit, customer, group, window, level, used, "check");
        }),
      );
    }
  }

  private evaluate(
    workspaceId: string,
    change: Pick<UsageChange, "limit" | "customer" | "group">,
    used: number,
    window: AlertWindow | null,
    trigger: "usage" | "check",
  ): void {
    const levels = levelsReached(change.limit.thresholds, used, change.limit.amount);
    if (levels.length === 0) return;
    const groupKey = canonicalJson(change.group);
    for (const level of levels) {
      this.raiseLevel(
        workspaceId,
        change.limit,
        change.customer,
        change.group,
        window,
        level,
        used,
        trigger,
        groupKey,
      );
    }
  }

  private raiseLevel(
    workspaceId: string,
    limit: QuotaLimit,
    customer: CustomerContext,
    group: Record<string, string | null>,
    window: AlertWindow | null,
    level: LevelReached,
    used: number,
    trigger: "usage" | "check",
    groupKey = canonicalJson(group),
  ): void {
    const at = this.deps.clock.now();
    const span =
      window ?? rollingAlertWindow(typeof limit.period === "object" ? limit.period.rolling_seconds : 1, at);
    // A plain-string memo first: a counter above a level is re-evaluated at every commit (and every
    // check past a soft quota), and hashing the alert's identity each time would be wasted work.
    const memo = `${workspaceId}\u0001${scopeTag(limit.scope)}\u0001${limit.id}\u0001${customer.id}\u0001${groupKey}\u0001${span.start}\u0001${level.type}\u0001${level.threshold}`;
    if (this.raisedLevels.has(memo)) return;
    const alert = limitAlert(this.deps.hash, {
      workspaceId,
      limit,
      subject: limit.scope.kind === "workspace" ? "*" : customer.id,
      group,
      window: span,
      level,
      used,
      trigger,
      at,
    });
    if (this.raised.has(alert.id)) {
      this.rememberLevel(memo);
      return;
    }
    this.track(this.raise(workspaceId, alert).then(() => this.rememberLevel(memo)));
  }

  private rememberLevel(memo: string): void {
    if (this.raisedLevels.size >= alertBounds.raisedMemoMax) this.raisedLevels.clear();
    this.raisedLevels.add(memo);
  }

  /**
   * The level of available credits under which `balance.low` is raised, for every customer with a
   * balance; null (the default) raises none. Set from tollgate.yaml `alerts.balance_low_level` or
   * TOLLGATE_BALANCE_LOW_LEVEL.
   */
  balanceLowLevel: number | null = null;

  /**
   * Told of every change of a customer's balance (Balances.onChange): raises `balance.low` when the
   * available credits are under balanceLowLevel, once per top-up (the latest grant is the episode).
   */
  onBalance(workspaceId: string, customer: string, view: LedgerView): void {
    const level = this.balanceLowLevel;
    if (level === null || !(view.available < BigInt(level))) return;
    const available = view.available;
    this.track(
      this.balanceLow(workspaceId, {
        customer,
        available: Number.isSafeInteger(Number(available)) ? Number(available) : Number.MIN_SAFE_INTEGER,
        level,
        episode: view.grants.at(-1)?.id ?? "none",
      }),
    );
  }

  /**
   * For the balances module: raises `balance.low` when `available` is under `level` (once per
   * customer, level and episode; see BalanceLowInput). Resolves true when a new alert was stored.
   */
  async balanceLow(
    workspaceId: string,
    input: Omit<BalanceLowInput, "workspaceId" | "at">,
  ): Promise<boolean> {
    if (!(input.available < input.level)) return false;
    const alert = balanceLowAlert(this.deps.hash, { ...input, workspaceId, at: this.deps.clock.now() });
    return this.track(this.raise(workspaceId, alert));
  }

  /** Stores the alert and its outbox rows once; true when this call stored it. */
  async raise(workspaceId: string, alert: Alert): Promise<boolean> {
    if (this.raised.has(alert.id)) return false;
    const inflight = this.raising.get(alert.id);
    if (inflight) return inflight.then(() => false);
    const work = (async () => {
      const subscribed = (await this.webhooksOf(workspaceId)).filter((w) => w.events.includes(alert.type));
      const deliveries = subscribed.map((w) => ({ id: this.deps.newId("dlv"), webhookId: w.id }));
      const stored = await this.deps.store.insertAlert(workspaceId, alert, deliveries, this.deps.clock.now());
      if (this.raised.size >= alertBounds.raisedMemoMax) this.raised.clear();
      this.raised.add(alert.id);
      if (stored && deliveries.length > 0) this.onDeliveries();
      return stored;
    })();
    this.raising.set(alert.id, work);
    try {
      return await work;
    } finally {
      this.raising.delete(alert.id);
    }
  }

  /** Resolves once every alert raised so far in the background is stored (tests, shutdown). */
  async settle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  private track<T>(p: Promise<T>): Promise<T> {
    const tracked = p.catch((error) => {
      this.onError(error);
      return undefined as T;
    });
    this.pending.add(tracked);
    tracked.finally(() => this.pending.delete(tracked));
    return p;
  }

  // ---- usage summaries ----------------------------------------------------------------------------

  /**
   * Emits `usage.summary` for the last complete UTC day, and on a new week for the last complete
   * week (Monday to Monday), once per customer with usage in it. Called by the server's scheduler
   * every poll; cheap when nothing is due. Idempotent (deterministic ids): a restart re-emits nothing.
   */
  summaryTick(): Promise<number> {
    // Single-flight: the poll loop does not wait for a tick, and a summary scan can take a while.
    this.summarizing ??= this.summaryRound().finally(() => {
      this.summarizing = null;
    });
    return this.summarizing;
  }

  private async summaryRound(): Promise<number> {
    const now = this.deps.clock.now();
    const dayEnd = windowStartUtc("day", now);
    const weekEnd = windowStartUtc("week", now);
    let raised = 0;
    if (this.lastDaily !== dayEnd) {
      raised += await this.summarizeAll("day", { start: dayEnd - DAY_MS, end: dayEnd });
      this.lastDaily = dayEnd;
    }
    if (this.lastWeekly !== weekEnd) {
      raised += await this.summarizeAll("week", { start: weekEnd - 7 * DAY_MS, end: weekEnd });
      this.lastWeekly = weekEnd;
    }
    return raised;
  }

  private async summarizeAll(
    period: "day" | "week",
    window: { start: number; end: number },
  ): Promise<number> {
    let raised = 0;
    for (const ws of await this.deps.store.listWorkspaces()) {
      raised += await this.summarize(ws.id, period, window);
    }
    return raised;
  }

  /** One workspace's summaries of one window; how many were newly stored. */
  async summarize(
    workspaceId: string,
    period: "day" | "week",
    window: { start: number; end: number },
  ): Promise<number> {
    const book = await this.deps.book.get(workspaceId);
    const meters = [...book.meters.values()];
    const perCustomer = new Map<
      string,
      {
        events: number;
        values: Map<string, bigint>;
        meters: Map<string, ReturnType<typeof createAccumulator>>;
      }
    >();
    // An hour at a time, yielding between hours: a day of raw events is read without holding up
    // requests for the whole scan.
    const visit = (e: UsageEvent, seq: number) => {
      let c = perCustomer.get(e.customer);
      if (!c) {
        c = { events: 0, values: new Map(), meters: new Map() };
        perCustomer.set(e.customer, c);
      }
      c.events++;
      for (const name in e.values) c.values.set(name, (c.values.get(name) ?? 0n) + BigInt(e.values[name]!));
      for (const m of meters) {
        if (!meterMatches(m, e)) continue;
        let acc = c.meters.get(m.id);
        if (!acc) {
          acc = createAccumulator(m);
          c.meters.set(m.id, acc);
        }
        acc.add(e, seq);
      }
    };
    for (let from = window.start; from < window.end; from += HOUR_MS) {
      const to = Math.min(from + HOUR_MS, window.end);
      await this.deps.store.scanEvents(workspaceId, { from, to }, visit);
      await this.pause();
    }
    let raised = 0;
    const at = this.deps.clock.now();
    for (const [customer, c] of [...perCustomer].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      const values: Record<string, number | string> = {};
      for (const [name, v] of [...c.values].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
        values[name] = name === "cost" ? formatPicoUsd(v) : exact(v);
      }
      const meterValues: Record<string, number | string> = {};
      for (const [id, acc] of [...c.meters].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
        const r = acc.result();
        meterValues[id] = typeof r === "bigint" ? exact(r) : r;
      }
      const alert = usageSummaryAlert(this.deps.hash, {
        workspaceId,
        customer,
        period,
        window,
        events: c.events,
        values,
        meters: meterValues,
        at,
      });
      if (await this.raise(workspaceId, alert)) raised++;
    }
    return raised;
  }

  // ---- webhook endpoints --------------------------------------------------------------------------

  private webhooksOf(workspaceId: string): Promise<WebhookRecord[]> {
    let hooks = this.endpoints.get(workspaceId);
    if (!hooks) {
      hooks = this.deps.store.listWebhooks(workspaceId);
      hooks.catch(() => this.endpoints.delete(workspaceId));
      this.endpoints.set(workspaceId, hooks);
    }
    return hooks;
  }

  /** `secret` is minted by the caller (the core has no randomness): `whsec_` + base64 of 24+ bytes. */
  async createWebhook(workspaceId: string, input: WebhookInput, secret: string): Promise<WebhookRecord> {
    const events = checkWebhookInput(input);
    const existing = await this.deps.store.listWebhooks(workspaceId);
    if (existing.length >= alertBounds.webhooksMax) {
      throw invalid(`a workspace has at most ${alertBounds.webhooksMax} webhook endpoints`, { field: "url" });
    }
    const now = this.deps.clock.now();
    const record: WebhookRecord = {
      id: this.deps.newId("wh"),
      url: input.url,
      events,
      description: input.description ?? null,
      secret,
      previousSecret: null,
      previousSecretUntil: null,
      createdAt: now,
      updatedAt: now,
    };
    await this.deps.store.putWebhook(workspaceId, record);
    this.endpoints.delete(workspaceId);
    return record;
  }

  listWebhooks(workspaceId: string): Promise<WebhookRecord[]> {
    return this.deps.store.listWebhooks(workspaceId);
  }

  async getWebhook(workspaceId: string, id: string): Promise<WebhookRecord> {
    const w = await this.deps.store.getWebhook(workspaceId, id);
    if (!w) throw notFound("webhook", id);
    return w;
  }

  async deleteWebhook(workspaceId: string, id: string): Promise<void> {
    const deleted = await this.deps.store.deleteWebhook(workspaceId, id, this.deps.clock.now());
    this.endpoints.delete(workspaceId);
    if (!deleted) throw notFound("webhook", id);
  }

  /**
   * A new secret; the previous one keeps signing (a second `v1,` signature in the header) for
   * `graceMs`, so receivers can switch without dropping deliveries. 0 retires it at once.
   */
  async rotateSecret(
    workspaceId: string,
    id: string,
    secret: string,
    graceMs: number = alertBounds.previousSecretGraceMs,
  ): Promise<WebhookRecord> {
    const w = await this.getWebhook(workspaceId, id);
    const now = this.deps.clock.now();
    const rotated: WebhookRecord = {
      ...w,
      secret,
      previousSecret: graceMs > 0 ? w.secret : null,
      previousSecretUntil: graceMs > 0 ? now + graceMs : null,
      updatedAt: now,
    };
    await this.deps.store.putWebhook(workspaceId, rotated);
    this.endpoints.delete(workspaceId);
    return rotated;
  }

  async listDeliveries(
    workspaceId: string,
    webhookId: string,
    query: { state?: DeliveryState; cursor?: string; limit?: number },
  ): Promise<{ data: { delivery: DeliveryRecord; attempts: DeliveryAttempt[] }[]; nextCursor?: string }> {
    await this.getWebhook(workspaceId, webhookId);
    const limit = query.limit ?? bounds.pageSizeDefault;
    const rows = await this.deps.store.listDeliveries(workspaceId, webhookId, {
      state: query.state,
      before: parseSeqCursor(query.cursor),
      limit: limit + 1,
    });
    const page = rows.slice(0, limit);
    return {
      data: page.map(({ delivery, attempts }) => ({ delivery, attempts })),
      ...(rows.length > limit ? { nextCursor: String(page[page.length - 1]!.seq) } : {}),
    };
  }

  async redeliver(workspaceId: string, webhookId: string, deliveryId: string): Promise<DeliveryRecord> {
    await this.getWebhook(workspaceId, webhookId);
    const d = await this.deps.store.requeueDelivery(
      workspaceId,
      webhookId,
      deliveryId,
      this.deps.clock.now(),
    );
    if (!d) throw notFound("delivery", deliveryId);
    this.onDeliveries();
    return d;
  }

  async listAlerts(
    workspaceId: string,
    query: { type?: string; customer?: string; cursor?: string; limit?: number },
  ): Promise<{ data: Alert[]; nextCursor?: string }> {
    if (query.type !== undefined && !isAlertType(query.type)) {
      throw invalid(`type must be one of ${ALERT_TYPES.join(", ")}`, { field: "query.type" });
    }
    const limit = query.limit ?? bounds.pageSizeDefault;
    const rows = await this.deps.store.listAlerts(workspaceId, {
      type: query.type,
      customer: query.customer,
      before: parseSeqCursor(query.cursor),
      limit: limit + 1,
    });
    const page = rows.slice(0, limit);
    return {
      data: page.map((r) => r.alert),
      ...(rows.length > limit ? { nextCursor: String(page[page.length - 1]!.seq) } : {}),
    };
  }
}

/** Validates an endpoint's URL and event types; returns the events, deduplicated, in catalogue order. */
export function checkWebhookInput(input: WebhookInput): string[] {
  let url: URL;
  try {
    url = new URL(input.url);
  } catch {
    throw invalid("url is not a valid URL", { field: "url" });
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw invalid("url must be http or https", { field: "url" });
  }
  if (url.username || url.password) throw invalid("url must not carry credentials", { field: "url" });
  if (input.url.length > alertBounds.webhookUrlLengthMax) {
    throw invalid(`url is longer than ${alertBounds.webhookUrlLengthMax} characters`, { field: "url" });
  }
  if (input.events.length === 0) throw invalid("events must name at least one type", { field: "events" });
  for (const [i, e] of input.events.entries()) {
    if (!isAlertType(e)) {
      throw invalid(`events[${i}] must be one of ${ALERT_TYPES.join(", ")}`, { field: `events[${i}]` });
    }
  }
  return ALERT_TYPES.filter((t) => input.events.includes(t));
}

function parseSeqCursor(cursor: string | undefined): number | undefined {
  if (cursor === undefined) return undefined;
  if (!/^[1-9][0-9]{0,15}$/.test(cursor)) throw invalid("cursor is not valid", { field: "cursor" });
  return Number(cursor);
}

function exact(v: bigint): number | string {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
}

function canonicalGroup(limit: QuotaLimit, group: Record<string, string | null>): string {
  const g: Record<string, string | null> = {};
  for (const d of limit.groupBy) g[d] = group[d] ?? null;
  return canonicalJson(g);
}
