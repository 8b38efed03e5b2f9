import { AlertCenter } from "../alerts/center.js";
import { canonicalFlat } from "../canonical.js";
import type { Clock } from "../clock.js";
import { invalid, notFound, TollgateError } from "../errors.js";
import { copyFields } from "../fields.js";
import type { LedgerEntry } from "../ledger/types.js";
import { bounds } from "../limits.js";
import { type Accumulator, createAccumulator, meterMatches } from "../meter/meter.js";
import { type CalendarUnit, nextWindowStartUtc, windowStartUtc } from "../period/calendar.js";
import type { ModelClassMap } from "../plans/model-classes.js";
import { type PlanTerms, type PlanTermsInput, toPlanTerms } from "../plans/terms.js";
import type { EventToStore, ReservationRecord, Store, StoredRecord } from "../ports/store.js";
import { formatPicoUsd } from "../pricing/money.js";
import { limitState, percentUsed } from "../quota/decide.js";
import {
  type AnyLimit,
  type ConcurrencyLimitInput,
  limitRecordId,
  presentLimit,
  type QuotaInput,
  type RateLimitInput,
  scopeOf,
  toConcurrencyLimit,
  toQuota,
  toRateLimit,
} from "../quota/definitions.js";
import { rateLimitConfigProblems } from "../ratelimit/index.js";
import { formatInstant, parseInstant } from "../time.js";
import type { ApiKeyRecord, Customer, MeterDef, Page, Role, UsageEvent } from "../types.js";
import {
  type BalanceRule,
  type BalanceRuleInput,
  Balances,
  type CreditInput,
  type DebitInput,
  toBalanceRule,
} from "./balances.js";
import { type CompiledBook, LimitBook, listAll, withPicoAmount } from "./book.js";
import {
  decideEntitlement,
  ENTITLEMENT_FLAG_DIMENSION,
  Entitlements,
  entitlementError,
  MODEL_CLASS_DIMENSION,
} from "./entitlements.js";
import type { CustomerInput, EventInput, MeterInput, MeterQueryInput, PlanInput } from "./inputs.js";
import { type CheckEvent, type CheckResult, type CustomerContext, Limiter } from "./limiter.js";
import type { LimiterFactory, LimiterPort } from "./limiter-port.js";
import type { KeyMinter } from "./ports.js";
import { type PriceCatalogue, Pricing } from "./pricing.js";

export interface EngineDeps {
  store: Store;
  clock: Clock;
  keys: KeyMinter;
  /** Valid IANA zone names; the server passes the period module's check. */
  isValidTimeZone: (zone: string) => boolean;
  /** The model price catalogue (the server loads it from a maintained package). @default none */
  prices?: PriceCatalogue;
  /** Builds the limiter (hot limit state). @default the in-memory Limiter of this process */
  limiter?: LimiterFactory;
}

export interface Plan {
  id: string;
  name: string;
  retentionDays: number | null;
  limits: Record<string, unknown>[];
  rateLimits: Record<string, unknown>[];
  concurrencyLimits: Record<string, unknown>[];
  /** Feature gates, model classes and overage terms (plans/terms.ts); absent on older plans. */
  features?: PlanTerms["features"];
  modelClasses?: PlanTerms["modelClasses"];
  overage?: PlanTerms["overage"];
  createdAt: number;
  updatedAt: number;
}

export interface MeterQueryRow {
  windowStart: number | null;
  windowEnd: number | null;
  value: number | bigint;
  groups: Record<string, string | null>;
}

type CustomerBody = Omit<Customer, "id" | "createdAt" | "updatedAt">;
type MeterBody = Omit<MeterDef, "id" | "createdAt" | "updatedAt">;
type PlanBody = Omit<Plan, "id" | "createdAt" | "updatedAt">;

const EVENT_FUTURE_SKEW_MS = 24 * 3_600_000;

/** The domain operations behind the API. Decisions live here; the store only keeps state. */
export class Engine {
  readonly store: Store;
  readonly clock: Clock;
  private readonly keys: KeyMinter;
  private readonly isValidTimeZone: (zone: string) => boolean;
  readonly book: LimitBook;
  readonly limiter: LimiterPort;
  /** Alerts (threshold, balance.low, usage.summary) and webhook endpoints; see alerts/center.ts. */
  readonly alerts: AlertCenter;
  readonly pricing: Pricing;
  readonly balances: Balances;
  /** Plans' feature gates and model classes, and the workspace's model-class map. */
  readonly entitlements: Entitlements;
  /** Told of each newly recorded event whose model has no price (the server counts them in /metrics). */
  onUnpriced: ((workspaceId: string, model: string) => void) | null;
  /** workspace → customer id → context; nested so that a lookup builds no key string. */
  private readonly customerCache = new Map<string, Map<string, CustomerContext>>();
  private customerCached = 0;

  constructor(deps: EngineDeps) {
    this.store = deps.store;
    this.clock = deps.clock;
    this.keys = deps.keys;
    this.isValidTimeZone = deps.isValidTimeZone;
    this.book = new LimitBook(deps.store, deps.clock);
    this.entitlements = new Entitlements(deps.store);
    this.pricing = new Pricing(deps.store, deps.prices ?? { rows: [], aliases: [] });
    this.balances = new Balances(deps.store);
    this.onUnpriced = null;
    // ---- alerts and webhooks: the limiter tells the alert center of every counter a commit changes
    this.alerts = new AlertCenter({
      store: deps.store,
      clock: deps.clock,
      hash: (text) => deps.keys.hash(text),
      newId: (prefix) => deps.keys.id(prefix),
      book: this.book,
      customerContext: (ws, id) => this.customerContext(ws, id),
      counterUsage: (ws, customer, limit, meter, groupKey) =>
        this.limiter.counterUsage(ws, customer, limit, meter, groupKey),
    });
    const newId = () => deps.keys.id("rsv");
    this.limiter = deps.limiter
      ? deps.limiter({ store: deps.store, book: this.book, clock: deps.clock, newId, observer: this.alerts })
      : new Limiter(deps.store, this.book, deps.clock, newId, this.alerts);
    this.balances.onChange = (ws, customer, view) => this.alerts.onBalance(ws, customer, view);
    // A customer's plan, zone or anchor changed (here or, under a shared limiter, in another
    // process): the cached contexts of the workspace go with the book.
    this.book.onInvalidate.push((ws) => {
      const dropped = this.customerCache.get(ws);
      if (!dropped) return;
      this.customerCached -= dropped.size;
      this.customerCache.delete(ws);
    });
  }

  /** Brings back the holds of active reservations; call once before serving. */
  async start(): Promise<void> {
    await this.limiter.restore();
  }

  // ---- workspaces and keys -------------------------------------------------------------------

  /** Creates the workspace if needed, and an admin key when it has none (plaintext given or minted). */
  async bootstrap(workspaceId: string, adminKey?: string): Promise<{ adminKey?: string; created: boolean }> {
    const { created } = await this.store.ensureWorkspace(workspaceId, this.clock.now());
    const existing = await this.store.listApiKeys(workspaceId, {});
    if (existing.some((k) => k.role === "admin")) {
      if (adminKey && !(await this.store.findApiKeyByHash(this.keys.hash(adminKey)))) {
        await this.insertKey(workspaceId, "admin (from TOLLGATE_ADMIN_KEY)", "admin", null, adminKey);
      }
      return { created };
    }
    const minted = await this.insertKey(workspaceId, "bootstrap admin", "admin", null, adminKey);
    return { adminKey: minted.key, created };
  }

  async authenticate(key: string): Promise<ApiKeyRecord | undefined> {
    return this.store.findApiKeyByHash(this.keys.hash(key));
  }

  async createApiKey(workspaceId: string, name: string, role: Role) {
    return this.insertKey(workspaceId, name, role, null);
  }

  async createCustomerKey(workspaceId: string, customerId: string, name: string) {
    await this.getCustomer(workspaceId, customerId);
    return this.insertKey(workspaceId, name, "customer", customerId);
  }

  listApiKeys(workspaceId: string, customerId?: string) {
    return this.store.listApiKeys(workspaceId, { customerId: customerId ?? null });
  }

  async deleteApiKey(workspaceId: string, id: string, customerId?: string): Promise<void> {
    if (!(await this.store.deleteApiKey(workspaceId, id, customerId ?? null))) throw notFound("API key", id);
  }

  private async insertKey(
    workspaceId: string,
    name: string,
    role: ApiKeyRecord["role"],
    customerId: string | null,
    plaintext?: string,
  ): Promise<{ record: ApiKeyRecord; key: string }> {
    const minted = plaintext
      ? { key: plaintext, prefix: plaintext.slice(0, 8), hash: this.keys.hash(plaintext) }
      : this.keys.mint(role);
    const record: ApiKeyRecord = {
      id: this.keys.id(role === "customer" ? "ukey" : "key"),
      workspaceId,
      name,
      role,
      customerId,
      prefix: minted.prefix,
      hash: minted.hash,
      createdAt: this.clock.now(),
      lastUsedAt: null,
    };
    await this.store.insertApiKey(record);
    return { record, key: minted.key };
  }

  // ---- customers ------------------------------------------------------------------------------

  async putCustomer(workspaceId: string, id: string, input: CustomerInput) {
    const before = await this.store.getRecord<CustomerBody>(workspaceId, "customer", id);
    const prev: CustomerBody = before?.body ?? {
      name: null,
      plan: null,
      timezone: "UTC",
      billingAnchor: null,
      metadata: {},
    };
    // PUT upserts: a field left out keeps its value, null clears it.
    const body: CustomerBody = { ...prev };
    if (input.name !== undefined) body.name = input.name;
    if (input.plan !== undefined) {
      if (input.plan !== null && !(await this.store.getRecord(workspaceId, "plan", input.plan))) {
        throw invalid(`plan ${input.plan} does not exist`, { field: "plan" });
      }
      body.plan = input.plan;
    }
    if (input.timezone !== undefined) {
      const zone = input.timezone ?? "UTC";
      if (!this.isValidTimeZone(zone)) throw invalid(`unknown time zone ${zone}`, { field: "timezone" });
      body.timezone = zone;
    }
    if (input.billing_anchor !== undefined) {
      body.billingAnchor =
        input.billing_anchor === null ? null : parseInstant(input.billing_anchor, "billing_anchor");
    }
    if (input.metadata !== undefined) {
      body.metadata = input.metadata ?? {};
      if (JSON.stringify(body.metadata).length > bounds.metadataBytesMax) {
        throw invalid(`metadata is larger than ${bounds.metadataBytesMax} bytes`, { field: "metadata" });
      }
    }
    const { record, created } = await this.store.putRecord(
      workspaceId,
      "customer",
      id,
      body,
      this.clock.now(),
    );
    if (this.customerCache.get(workspaceId)?.delete(id)) this.customerCached--;
    // What decides which limits apply and their windows: every process must drop its cached context
    // (the book's invalidation reaches the other processes under a shared limiter).
    if (
      before &&
      (prev.plan !== body.plan ||
        prev.timezone !== body.timezone ||
        prev.billingAnchor !== body.billingAnchor)
    )
      this.book.invalidate(workspaceId);
    return { customer: toEntity<Customer, CustomerBody>(record), created };
  }

  async getCustomer(workspaceId: string, id: string): Promise<Customer> {
    const r = await this.store.getRecord<CustomerBody>(workspaceId, "customer", id);
    if (!r) throw notFound("customer", id);
    return toEntity<Customer, CustomerBody>(r);
  }

  listCustomers(workspaceId: string, page: PageInput): Promise<Page<Customer>> {
    return this.list<Customer, CustomerBody>(workspaceId, "customer", page);
  }

  // ---- plans ----------------------------------------------------------------------------------

  async putPlan(workspaceId: string, id: string, input: PlanInput, actor?: string) {
    // Inline limits are checked like PUT /v1/limits ones (meters exist, configurations are sound).
    const scope = { kind: "plan" as const, plan: id };
    const lists = [
      ["limit", "limits", input.limits],
      ["rate_limit", "rate_limits", input.rate_limits],
      ["concurrency_limit", "concurrency_limits", input.concurrency_limits],
    ] as const;
    for (const [kind, field, list] of lists) {
      const seen = new Set<string>();
      for (const [i, raw] of (list ?? []).entries()) {
        const l = raw as unknown as { id: string } & QuotaInput & RateLimitInput & ConcurrencyLimitInput;
        if (seen.has(l.id))
          throw invalid(`${field}[${i}].id ${l.id} is listed twice`, { field: `${field}[${i}].id` });
        seen.add(l.id);
        try {
          await this.compileLimit(workspaceId, kind, l.id, scope, l);
        } catch (e) {
          if (e instanceof TollgateError && e.details) e.details.field = `${field}[${i}].${e.details.field}`;
          throw e;
        }
      }
    }
    const meterKinds = new Map<string, "cost" | "units" | "unsupported" | undefined>();
    for (const t of (input as PlanTermsInput).overage ?? []) {
      const m = await this.store.getRecord<MeterBody>(workspaceId, "meter", t.meter);
      meterKinds.set(
        t.meter,
        !m
          ? undefined
          : m.body.aggregation !== "sum" && m.body.aggregation !== "count"
            ? "unsupported"
            : m.body.value.includes("cost")
              ? "cost"
              : "units",
      );
    }
    const terms = toPlanTerms(input as PlanTermsInput, (meter) => meterKinds.get(meter));
    const body: PlanBody = {
      name: input.name,
      retentionDays: input.retention_days ?? null,
      limits: input.limits ?? [],
      rateLimits: input.rate_limits ?? [],
      concurrencyLimits: input.concurrency_limits ?? [],
      features: terms.features,
      modelClasses: terms.modelClasses,
      overage: terms.overage,
    };
    const now = this.clock.now();
    const before = await this.store.getRecord<PlanBody>(workspaceId, "plan", id);
    const { record, created } = await this.store.putRecord(workspaceId, "plan", id, body, now);
    this.book.invalidate(workspaceId);
    this.entitlements.invalidate(workspaceId);
    // A plan's inline limits and terms are limits too: who changed them, when, before and after.
    const auditId = this.keys.id("audit");
    await this.store.putRecord(
      workspaceId,
      "audit",
      auditId,
      {
        id: auditId,
        kind: "plan.put",
        at: formatInstant(now),
        key_id: actor ?? null,
        plan: id,
        before: before?.body ?? null,
        after: body,
      },
      now,
    );
    return { plan: toEntity<Plan, PlanBody>(record), created };
  }

  async getPlan(workspaceId: string, id: string): Promise<Plan> {
    const r = await this.store.getRecord<PlanBody>(workspaceId, "plan", id);
    if (!r) throw notFound("plan", id);
    return toEntity<Plan, PlanBody>(r);
  }

  listPlans(workspaceId: string, page: PageInput): Promise<Page<Plan>> {
    return this.list<Plan, PlanBody>(workspaceId, "plan", page);
  }

  // ---- meters ---------------------------------------------------------------------------------

  async putMeter(workspaceId: string, id: string, input: MeterInput) {
    const value = input.value === undefined ? [] : Array.isArray(input.value) ? input.value : [input.value];
    if (value.includes("cost") && value.length > 1) {
      throw invalid("cost is money: a meter sums it alone, not with other values", { field: "value" });
    }
    if (input.aggregation !== "count" && value.length === 0) {
      throw invalid(`aggregation ${input.aggregation} needs a value`, { field: "value" });
    }
    const body: MeterBody = {
      eventType: input.event_type,
      aggregation: input.aggregation,
      value,
      filter: input.filter ?? {},
    };
    const { record, created } = await this.store.putRecord(workspaceId, "meter", id, body, this.clock.now());
    this.book.invalidate(workspaceId);
    return { meter: toEntity<MeterDef, MeterBody>(record), created };
  }

  async getMeter(workspaceId: string, id: string): Promise<MeterDef> {
    const r = await this.store.getRecord<MeterBody>(workspaceId, "meter", id);
    if (!r) throw notFound("meter", id);
    return toEntity<MeterDef, MeterBody>(r);
  }

  listMeters(workspaceId: string, page: PageInput): Promise<Page<MeterDef>> {
    return this.list<MeterDef, MeterBody>(workspaceId, "meter", page);
  }

  /**
   * Aggregates a meter over [from, to), per window and group. Windows are UTC calendar windows (weeks
   * from Monday); only windows and groups with matching events are returned, in time then group order.
   */
  async queryMeter(workspaceId: string, id: string, q: MeterQueryInput): Promise<MeterQueryRow[]> {
    const meter = await this.getMeter(workspaceId, id);
    const from = q.from === undefined ? undefined : parseInstant(q.from, "query.from");
    const to = q.to === undefined ? undefined : parseInstant(q.to, "query.to");
    if (from !== undefined && to !== undefined && from >= to) {
      throw invalid("from must be before to", { field: "query.from" });
    }
    const groupBy = q.group_by ? q.group_by.split(",").map((s) => s.trim()) : [];
    if (groupBy.length > bounds.groupByMax || groupBy.some((g) => g === "")) {
      throw invalid(`group_by takes 1 to ${bounds.groupByMax} dimension names`, { field: "group_by" });
    }
    const window = q.window as CalendarUnit | undefined;
    const cells = new Map<string, { start: number | null; groups: (string | null)[]; acc: Accumulator }>();
    let tooMany = false;
    await this.store.scanEvents(
      workspaceId,
      { types: [meter.eventType], customer: q.customer, from, to },
      (event, seq) => {
        if (!meterMatches(meter, event)) return;
        const start = window ? windowStartUtc(window, event.timestamp) : (from ?? null);
        const groups = groupBy.map((g) => event.dimensions[g] ?? null);
        const key = `${start}\u0000${groups.join("\u0000")}`;
        let cell = cells.get(key);
        if (!cell) {
          if (cells.size >= bounds.queryWindowsMax) {
            tooMany = true;
            return;
          }
          cell = { start, groups, acc: createAccumulator(meter) };
          cells.set(key, cell);
        }
        cell.acc.add(event, seq);
      },
    );
    if (tooMany) {
      throw invalid(`the query has more than ${bounds.queryWindowsMax} windows and groups; narrow it`, {
        field: "window",
      });
    }
    const rows = [...cells.values()].map((c) => ({
      windowStart: c.start,
      windowEnd: window && c.start !== null ? nextWindowStartUtc(window, c.start) : (to ?? null),
      value: c.acc.result(),
      groups: Object.fromEntries(groupBy.map((g, i) => [g, c.groups[i] ?? null])),
      sortKey: c.groups,
    }));
    rows.sort((a, b) => (a.windowStart ?? 0) - (b.windowStart ?? 0) || compareGroups(a.sortKey, b.sortKey));
    return rows.map(({ sortKey: _, ...row }) => row);
  }

  // ---- events ---------------------------------------------------------------------------------

  /** Records a batch all-or-nothing and idempotently; resolves once it is durable. */
  async recordEvents(
    workspaceId: string,
    inputs: EventInput[],
  ): Promise<{ accepted: number; duplicates: number; flagged?: FlaggedEvent[] }> {
    const now = this.clock.now();
    if (!this.pricing.ready(workspaceId)) await this.pricing.prepare(workspaceId);
    const book = this.book.peek(workspaceId) ?? (await this.book.get(workspaceId));
    // Model classes: the event gets dimensions.model_class; usage of a class the customer's plan
    // excludes already happened, so it is recorded (never lost) and flagged, not refused.
    const ent = this.entitlements.peek(workspaceId) ?? (await this.entitlements.get(workspaceId));
    const classes = ent.classes.empty ? null : ent.classes;
    let termsOf: Map<string, PlanTerms | null> | null = null;
    if (classes !== null && ent.gated) {
      termsOf = new Map();
      for (const e of inputs) {
        if (termsOf.has(e.customer)) continue;
        const plan = (await this.customerContext(workspaceId, e.customer)).plan;
        termsOf.set(e.customer, plan === null ? null : (ent.plans.get(plan) ?? null));
      }
    }
    let flagged: FlaggedEvent[] | undefined;
    let batch: EventToStore[] | null = new Array(inputs.length);
    const events: UsageEvent[] = new Array(inputs.length);
    let ledgers: (LedgerEntry[] | undefined)[] | undefined;
    let unpriced: (string | undefined)[] | undefined;
    for (let i = 0; i < inputs.length; i++) {
      const b = this.normalizeEvent(workspaceId, inputs[i]!, i, now, classes, termsOf);
      if (b.notIncluded !== undefined) {
        flagged ??= [];
        flagged.push({
          index: i,
          id: inputs[i]!.id,
          code: "FEATURE_NOT_INCLUDED",
          model_class: b.notIncluded,
        });
      }
      batch[i] = b.stored;
      events[i] = b.stored.event;
      if (b.unknownModel !== undefined) {
        unpriced ??= [];
        unpriced[i] = b.unknownModel;
      }
      if (book.balanceRules.length > 0) {
        const entries = this.balances.usageEntries(book.balanceRules, book.meters, b.stored.event, now);
        if (entries) {
          b.stored.ledger = entries;
          ledgers ??= [];
          ledgers[i] = entries;
        }
      }
    }
    const applyIncrements = await this.limiter.prepareIncrements(workspaceId, events, (id) =>
      this.customerContext(workspaceId, id),
    );
    // What runs after the commit keeps the events, not their stored forms (fingerprints, JSON).
    const appended = this.store.appendEvents(workspaceId, batch, (inserted, commitSeq) => {
      applyIncrements(inserted, commitSeq);
      for (const i of inserted) {
        const ledger = ledgers?.[i];
        if (ledger) this.balances.applyCommitted(workspaceId, events[i]!.customer, ledger);
        const model = unpriced?.[i];
        if (model !== undefined) this.onUnpriced?.(workspaceId, model);
      }
    });
    // The store has what it needs: the stored forms are garbage from here, while the batch waits for
    // its commit (often a few hundred ms under load: long enough to be copied by every scavenge and
    // promoted, had this frame kept them).
    batch = null;
    const result = await appended;
    if (!result.ok) {
      throw new TollgateError("CONFLICT", `event ${result.id} was already recorded with a different body`, {
        index: result.conflictIndex,
        id: result.id,
      });
    }
    return { accepted: result.accepted, duplicates: result.duplicates, ...(flagged ? { flagged } : {}) };
  }

  private normalizeEvent(
    workspaceId: string,
    input: EventInput,
    index: number,
    now: number,
    classes: ModelClassMap | null = null,
    termsOf: Map<string, PlanTerms | null> | null = null,
  ): { stored: EventToStore; unknownModel?: string; notIncluded?: string } {
    // (No closure and no field name built per event: this runs for every recorded event.)
    let timestamp = now;
    if (input.timestamp !== undefined) {
      try {
        timestamp = parseInstant(input.timestamp, "timestamp");
      } catch {
        timestamp = Number.NaN;
      }
      if (Number.isNaN(timestamp)) {
        const field = `events[${index}].timestamp`;
        throw invalid(`${field} must be an RFC 3339 instant`, { field, index });
      }
      if (timestamp > now + EVENT_FUTURE_SKEW_MS) {
        throw invalid("timestamp is more than 24 hours in the future", {
          index,
          field: `events[${index}].timestamp`,
        });
      }
    }
    const values = input.values ?? {};
    for (const name in values) {
      const v = values[name];
      if (name === "cost" && typeof v === "string") continue; // money: a decimal string, read by pricing
      if (!Number.isSafeInteger(v) || (v as number) < 0) {
        throw invalid(`values.${name} must be a non-negative integer up to 2^53-1`, {
          index,
          field: `events[${index}].values.${name}`,
        });
      }
    }
    let dimensions = input.dimensions ?? {};
    let notIncluded: string | undefined;
    let derived = false;
    const modelClass =
      classes !== null && dimensions.model !== undefined ? classes.classOf(dimensions.model) : null;
    if (modelClass !== null) {
      const terms = termsOf?.get(input.customer) ?? null;
      const excluded =
        terms !== null && terms.modelClasses !== null && !terms.modelClasses.includes(modelClass);
      if (excluded) notIncluded = modelClass;
      if (
        dimensions[MODEL_CLASS_DIMENSION] === undefined ||
        (excluded && dimensions[ENTITLEMENT_FLAG_DIMENSION] === undefined)
      ) {
        dimensions = { ...dimensions };
        derived = true;
        dimensions[MODEL_CLASS_DIMENSION] ??= modelClass;
        if (excluded) dimensions[ENTITLEMENT_FLAG_DIMENSION] ??= "model_class_not_included";
      }
    }
    // Pricing adds (or converts the event's own) values.cost: on a copy, the input stays as sent.
    const priced = copyFields(values);
    let pricing: ReturnType<Pricing["price"]>;
    try {
      pricing = this.pricing.price(workspaceId, priced, dimensions, timestamp, index);
    } catch (e) {
      if (e instanceof TollgateError) throw new TollgateError(e.code, e.message, { ...e.details, index });
      throw e;
    }
    // The event and its stored form are built whole, with or without priceRow, not given it as a
    // property afterwards (a new hidden class and a property store for each, per event).
    const priceRow = pricing.kind === "priced" ? pricing.rowId : undefined;
    const event: UsageEvent =
      priceRow === undefined
        ? { id: input.id, type: input.type, customer: input.customer, timestamp, values: priced, dimensions }
        : {
            id: input.id,
            type: input.type,
            customer: input.customer,
            timestamp,
            values: priced,
            dimensions,
            priceRow,
          };
    const valuesJson = canonicalFlat(input.values);
    const dimensionsJson = canonicalFlat(input.dimensions);
    // Field order is fixed here, and values/dimensions are canonical: a retry with keys in another
    // order is still the same body.
    const fingerprint = `${JSON.stringify(input.id)}\u0000${JSON.stringify(input.type)}\u0000${JSON.stringify(input.customer)}\u0000${input.timestamp === undefined ? "" : JSON.stringify(input.timestamp)}\u0000${input.values === undefined ? "" : valuesJson}\u0000${input.dimensions === undefined ? "" : dimensionsJson}`;
    const storedValues = pricing.kind === "none" ? valuesJson : canonicalFlat(priced);
    // Derived dimensions (model_class) are stored; the fingerprint keeps the client's body.
    const storedDimensions = derived ? canonicalFlat(dimensions) : dimensionsJson;
    const stored: EventToStore =
      priceRow === undefined
        ? { event, fingerprint, valuesJson: storedValues, dimensionsJson: storedDimensions }
        : { event, fingerprint, valuesJson: storedValues, dimensionsJson: storedDimensions, priceRow };
    const out: { stored: EventToStore; unknownModel?: string; notIncluded?: string } =
      pricing.kind === "none" && pricing.unknownModel !== undefined
        ? { stored, unknownModel: pricing.unknownModel }
        : { stored };
    if (notIncluded !== undefined) out.notIncluded = notIncluded;
    return out;
  }

  // ---- limits ---------------------------------------------------------------------------------

  async putLimit(
    workspaceId: string,
    kind: "limit" | "rate_limit" | "concurrency_limit",
    id: string,
    input: QuotaInput | RateLimitInput | ConcurrencyLimitInput,
    /** The API key that made the change, for the audit log. */
    actor?: string,
  ): Promise<{ limit: AnyLimit; created: boolean }> {
    const scope = scopeOf(input);
    if (scope.kind === "plan" && !(await this.store.getRecord(workspaceId, "plan", scope.plan))) {
      throw invalid(`plan ${scope.plan} does not exist`, { field: "plan" });
    }
    const limit = await this.compileLimit(workspaceId, kind, id, scope, input);
    const now = this.clock.now();
    if (limit.expiresAt !== undefined && limit.expiresAt <= now) {
      throw invalid("expires_at is not in the future", { field: "expires_at" });
    }
    const before = await this.store.getRecord<AnyLimit>(workspaceId, kind, limitRecordId(scope, id));
    const { created } = await this.store.putRecord(workspaceId, kind, limitRecordId(scope, id), limit, now);
    this.book.invalidate(workspaceId);
    await this.auditLimit(workspaceId, "limit.put", kind, id, scope, before?.body ?? null, limit, actor, now);
    return { limit, created };
  }

  /** Keeps who changed which limit, when, and its definition before and after (GET /v1/audit). */
  private async auditLimit(
    workspaceId: string,
    action: "limit.put" | "limit.delete",
    kind: "limit" | "rate_limit" | "concurrency_limit",
    id: string,
    scope: ReturnType<typeof scopeOf>,
    before: AnyLimit | null,
    after: AnyLimit | null,
    actor: string | undefined,
    now: number,
  ): Promise<void> {
    const auditId = this.keys.id("audit");
    const entry = {
      id: auditId,
      kind: action,
      at: formatInstant(now),
      key_id: actor ?? null,
      limit_kind: kind,
      limit: id,
      ...(scope.kind === "plan"
        ? { plan: scope.plan }
        : scope.kind === "customer"
          ? { customer: scope.customer }
          : {}),
      before: before && presentLimit(before),
      after: after && presentLimit(after),
    };
    await this.store.putRecord(workspaceId, "audit", auditId, entry, now);
  }

  /** Validates one limit definition (also those a plan lists inline) against the workspace. */
  async compileLimit(
    workspaceId: string,
    kind: "limit" | "rate_limit" | "concurrency_limit",
    id: string,
    scope: ReturnType<typeof scopeOf>,
    input: QuotaInput | RateLimitInput | ConcurrencyLimitInput,
  ): Promise<AnyLimit> {
    if (kind === "rate_limit") {
      const limit = toRateLimit(id, scope, input as RateLimitInput, 0);
      const problems = rateLimitConfigProblems({
        algorithm: limit.algorithm,
        limit: limit.limit,
        windowMs: limit.windowMs,
        ...(limit.burst !== null ? { burst: limit.burst } : {}),
      });
      if (problems.length > 0) {
        const p = problems[0]!;
        throw invalid(p.message, { field: p.path === "windowMs" ? "window_seconds" : p.path });
      }
      return limit;
    }
    if (kind === "concurrency_limit") return toConcurrencyLimit(id, scope, input as ConcurrencyLimitInput, 0);
    const q = input as QuotaInput;
    const meter = await this.store.getRecord<MeterBody>(workspaceId, "meter", q.meter);
    if (!meter) throw invalid(`meter ${q.meter} does not exist`, { field: "meter" });
    if (meter.body.aggregation !== "sum" && meter.body.aggregation !== "count") {
      throw invalid("a quota counts a sum or count meter", { field: "meter" });
    }
    // A spend cap: the amount is money (a decimal USD string), counted in pico-USD like values.cost.
    if (typeof (q.amount as unknown) === "string" && !meter.body.value.includes("cost")) {
      throw invalid("amount is a number of meter units (a USD string only for a meter over cost)", {
        field: "amount",
      });
    }
    return toQuota(id, scope, withPicoAmount(q), 0);
  }

  async getLimit(
    workspaceId: string,
    kind: "limit" | "rate_limit" | "concurrency_limit",
    id: string,
    where: { plan?: string; customer?: string },
  ): Promise<AnyLimit> {
    const r = await this.store.getRecord<AnyLimit>(workspaceId, kind, limitRecordId(scopeOf(where), id));
    if (!r) throw notFound("limit", id);
    return r.body;
  }

  async listLimits(
    workspaceId: string,
    kind: "limit" | "rate_limit" | "concurrency_limit",
  ): Promise<AnyLimit[]> {
    return (await listAll<AnyLimit>(this.store, workspaceId, kind)).map((r) => r.body);
  }

  async deleteLimit(
    workspaceId: string,
    kind: "limit" | "rate_limit" | "concurrency_limit",
    id: string,
    where: { plan?: string; customer?: string },
    actor?: string,
  ): Promise<void> {
    const scope = scopeOf(where);
    const before = await this.store.getRecord<AnyLimit>(workspaceId, kind, limitRecordId(scope, id));
    if (!(await this.store.deleteRecord(workspaceId, kind, limitRecordId(scope, id)))) {
      throw notFound("limit", id);
    }
    this.book.invalidate(workspaceId);
    const now = this.clock.now();
    await this.auditLimit(
      workspaceId,
      "limit.delete",
      kind,
      id,
      scope,
      before?.body ?? null,
      null,
      actor,
      now,
    );
  }

  /** The customer's plan, zone and anchor; a customer never PUT has no plan and lives in UTC. */
  async customerContext(workspaceId: string, id: string): Promise<CustomerContext> {
    const hit = this.customerCache.get(workspaceId)?.get(id);
    if (hit) return hit;
    const r = await this.store.getRecord<CustomerBody>(workspaceId, "customer", id);
    const ctx: CustomerContext = {
      id,
      plan: r?.body.plan ?? null,
      timezone: r?.body.timezone ?? "UTC",
      billingAnchor: r?.body.billingAnchor ?? null,
      checkPlan: undefined,
    };
    if (this.customerCached > 100_000) {
      this.customerCache.clear();
      this.customerCached = 0;
    }
    let inWorkspace = this.customerCache.get(workspaceId);
    if (!inWorkspace) {
      inWorkspace = new Map();
      this.customerCache.set(workspaceId, inWorkspace);
    }
    if (!inWorkspace.has(id)) this.customerCached++;
    inWorkspace.set(id, ctx);
    return ctx;
  }

  // ---- check / reserve / commit -----------------------------------------------------------------

  check(workspaceId: string, input: CheckInput): Promise<CheckResult> {
    try {
      const result = this.checkNow(workspaceId, input);
      return result instanceof Promise ? result : Promise.resolve(result);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * `check`, answered without a promise when everything the check needs is in memory: it is then
   * decided synchronously and no await is taken on the way (an await costs more than the rest of a
   * check); otherwise checkWith waits for what is missing and starts over with it, and this answers
   * that promise. An invalid check may throw here instead of rejecting. For callers where a promise
   * and an await per check add up: the HTTP route, a simulation's replay. (No named closure per
   * check either: under tsx, whose keepNames wraps every named closure in a defineProperty call, one
   * is expensive.)
   */
  checkNow(workspaceId: string, input: CheckInput): CheckResult | Promise<CheckResult> {
    return this.checkWith(workspaceId, input, {});
  }

  /**
   * One pass of a check. Whatever is not cached yet is loaded (a promise) and the pass starts over,
   * with what was loaded in `loaded` (used when the cache was dropped meanwhile, as an await would).
   */
  private checkWith(
    workspaceId: string,
    input: CheckInput,
    loaded: CheckLoaded,
  ): CheckResult | Promise<CheckResult> {
    const event: CheckEvent = {
      type: input.event.type,
      customer: input.event.customer,
      values: input.event.values ?? {},
      dimensions: input.event.dimensions ?? {},
    };
    for (const name in event.values) {
      const v = event.values[name]!;
      if (name === "cost" && typeof v === "string") continue; // money: a decimal string, read by pricing
      if (!Number.isSafeInteger(v) || v < 0) {
        throw invalid(`values.${name} must be a non-negative integer`, { field: `event.values.${name}` });
      }
    }
    const customer = this.customerCache.get(workspaceId)?.get(event.customer) ?? loaded.customer;
    if (customer === undefined)
      return this.customerContext(workspaceId, event.customer).then((c) => {
        loaded.customer = c;
        return this.checkWith(workspaceId, input, loaded);
      });
    // Entitlements before anything else: a plan that excludes the feature or the model's class
    // refuses (FEATURE_NOT_INCLUDED) before any counter, hold or balance moves.
    const ent = this.entitlements.peek(workspaceId) ?? loaded.ent;
    if (ent === undefined)
      return this.entitlements.get(workspaceId).then((e) => {
        loaded.ent = e;
        return this.checkWith(workspaceId, input, loaded);
      });
    const model = event.dimensions.model;
    const modelClass = model === undefined || ent.classes.empty ? null : ent.classes.classOf(model);
    if (modelClass !== null && event.dimensions[MODEL_CLASS_DIMENSION] === undefined) {
      event.dimensions = { ...event.dimensions, [MODEL_CLASS_DIMENSION]: modelClass };
    }
    if (ent.gated || (input.features !== undefined && input.features.length > 0)) {
      const terms = customer.plan === null ? null : (ent.plans.get(customer.plan) ?? null);
      const decision = decideEntitlement(terms, input.features ?? [], model, modelClass);
      if (!decision.allowed) throw entitlementError(decision, customer.plan);
    }
    const reserve = input.reserve
      ? { ttlMs: (input.reserve.ttl_seconds ?? DEFAULT_RESERVATION_TTL_S) * 1000 }
      : null;
    // The estimate is priced like a recorded event, so that spend limits and balances see its cost.
    if (event.dimensions.model !== undefined || event.values.cost !== undefined) {
      if (!this.pricing.ready(workspaceId) && !loaded.prices)
        return this.pricing.prepare(workspaceId).then(() => {
          loaded.prices = true;
          return this.checkWith(workspaceId, input, loaded);
        });
      event.values = copyFields(event.values);
      this.pricing.price(workspaceId, event.values, event.dimensions, this.clock.now(), "event.");
    }
    const book = this.book.peek(workspaceId) ?? loaded.book;
    if (book === undefined)
      return this.book.get(workspaceId).then((b) => {
        loaded.book = b;
        return this.checkWith(workspaceId, input, loaded);
      });
    const credits =
      book.balanceRules.length > 0
        ? this.balances.estimate(book.balanceRules, book.meters, event as UsageEvent)
        : null;
    if (credits !== null && this.balances.shared) {
      // Several processes share the ledger: the whole check runs under the customer's ledger lock,
      // on the ledger caught up with every process's holds and debits (Balances.locked).
      return this.balances
        .locked(workspaceId, customer.id, async (_account, write) =>
          this.limiter.check(
            workspaceId,
            customer,
            event,
            reserve,
            this.balances.gate(workspaceId, customer.id, credits, write),
          ),
        )
        .then((r) => this.checked(workspaceId, customer, r));
    }
    let gate = null;
    if (credits !== null) {
      if (!this.balances.peek(workspaceId, customer.id) && !loaded.account)
        return this.balances.account(workspaceId, customer.id).then(() => {
          loaded.account = true;
          return this.checkWith(workspaceId, input, loaded);
        });
      gate = this.balances.gate(workspaceId, customer.id, credits);
    }
    const result = this.limiter.check(workspaceId, customer, event, reserve, gate);
    if (result instanceof Promise) return result.then((r) => this.checked(workspaceId, customer, r));
    return this.checked(workspaceId, customer, result);
  }

  private checked(workspaceId: string, customer: CustomerContext, result: CheckResult): CheckResult {
    if (result.limits.length > 0) this.alerts.onCheck(workspaceId, customer, result);
    return result;
  }

  /** Records the actual event of a reservation and releases its hold; idempotent. */
  async commit(
    workspaceId: string,
    reservationId: string,
    input: { event?: Partial<EventInput> },
  ): Promise<CommitResult> {
    return this.limiter.commit(workspaceId, reservationId, async (r: ReservationRecord) => {
      const actual = input.event ?? {};
      const eventInput: EventInput = {
        id: actual.id ?? reservationId, // reservation ids are unique and prefixed "rsv_"
        type: actual.type ?? r.event.type,
        customer: actual.customer ?? r.customer,
        ...(actual.timestamp !== undefined ? { timestamp: actual.timestamp } : {}),
        // The estimate's values as checked, without the cost the check computed for them: the
        // committed event is priced afresh (an event's own cost is sent with the actual event).
        values: actual.values ?? withoutCost(r.event.values),
        dimensions: actual.dimensions ?? r.event.dimensions,
      };
      if (eventInput.customer !== r.customer) {
        throw invalid("the committed event must be for the reserved customer", { field: "event.customer" });
      }
      const recorded = await this.recordEvents(workspaceId, [eventInput]);
      await this.limiter.reconcileRates(r, eventInput.values ?? {});
      // The usage is debited by the debit rules with the event; the hold has done its job.
      if (r.balanceHold) await this.balances.endHold(workspaceId, r.customer, r.id, this.clock.now());
      return { reservation: reservationId, state: "committed", event_id: eventInput.id, ...recorded };
    });
  }

  async release(workspaceId: string, reservationId: string) {
    const r = await this.limiter.release(workspaceId, reservationId);
    if (r.balanceHold) await this.balances.endHold(workspaceId, r.customer, r.id, this.clock.now());
    return { reservation: r.id, state: r.state };
  }

  /** Every limit that applies to the customer, with its current state. */
  async customerLimits(workspaceId: string, customerId: string): Promise<CustomerLimitState[]> {
    await this.getCustomer(workspaceId, customerId);
    const customer = await this.customerContext(workspaceId, customerId);
    const book = await this.book.get(workspaceId);
    const set = book.effective(customerId, customer.plan);
    const out: CustomerLimitState[] = [];
    for (const limit of set.quotas) {
      const meter = book.meters.get(limit.meter);
      if (!meter) continue;
      for (const u of await this.limiter.quotaUsage(workspaceId, customer, limit, meter)) {
        const taken = u.used + u.reserved;
        const pct = percentUsed(taken, limit.amount);
        out.push({
          id: limit.id,
          kind: "quota",
          limit: limit.amount,
          used: u.used,
          reserved: u.reserved,
          remaining: Math.max(0, limit.amount - taken),
          percentUsed: pct,
          resetAt: u.resetAt,
          enforcement: limit.enforcement,
          state: limitState(pct, limit.thresholds),
          ...(limit.groupBy.length ? { group: u.group } : {}),
        });
      }
    }
    for (const limit of set.rates) {
      const d = await this.limiter.rateState(workspaceId, limit, customerId);
      if (!d) continue; // per-key limits have no single state for a customer
      const used = d.limit - d.remaining;
      const pct = percentUsed(used, d.limit);
      out.push({
        id: limit.id,
        kind: "rate",
        limit: d.limit,
        used,
        reserved: 0,
        remaining: d.remaining,
        percentUsed: pct,
        resetAt: d.resetAt,
        enforcement: limit.enforcement,
        state: limitState(pct, [80, 95]),
      });
    }
    for (const limit of set.concurrency) {
      const used = await this.limiter.concurrencyInUse(workspaceId, limit, customerId);
      const pct = percentUsed(used, limit.max);
      out.push({
        id: limit.id,
        kind: "concurrency",
        limit: limit.max,
        used,
        reserved: 0,
        remaining: Math.max(0, limit.max - used),
        percentUsed: pct,
        resetAt: null,
        enforcement: limit.enforcement,
        state: limitState(pct, [80, 95]),
      });
    }
    return out;
  }

  // ---- balances ---------------------------------------------------------------------------------

  async creditBalance(workspaceId: string, customerId: string, input: CreditInput) {
    await this.getCustomer(workspaceId, customerId);
    return this.balances.credit(workspaceId, customerId, input, this.clock.now());
  }

  async debitBalance(workspaceId: string, customerId: string, input: DebitInput) {
    await this.getCustomer(workspaceId, customerId);
    return this.balances.debit(workspaceId, customerId, input, this.clock.now());
  }

  async setMinimumBalance(workspaceId: string, customerId: string, minimumBalance: number) {
    await this.getCustomer(workspaceId, customerId);
    await this.balances.setMinimum(workspaceId, customerId, minimumBalance, this.clock.now());
    return this.balances.view(workspaceId, customerId, this.clock.now());
  }

  async balance(workspaceId: string, customerId: string) {
    await this.getCustomer(workspaceId, customerId);
    return this.balances.view(workspaceId, customerId, this.clock.now());
  }

  async balanceTransactions(workspaceId: string, customerId: string, page: PageInput) {
    await this.getCustomer(workspaceId, customerId);
    return this.balances.transactions(workspaceId, customerId, {
      ...(page.cursor !== undefined ? { cursor: page.cursor } : {}),
      limit: page.limit ?? bounds.pageSizeDefault,
    });
  }

  async putBalanceRule(workspaceId: string, id: string, input: BalanceRuleInput) {
    const meter = await this.store.getRecord<MeterBody>(workspaceId, "meter", input.meter);
    const rule = toBalanceRule(id, input, meter && ({ id: input.meter, ...meter.body } as MeterDef));
    const { created } = await this.store.putRecord(workspaceId, "balance_rule", id, rule, this.clock.now());
    this.book.invalidate(workspaceId);
    return { rule, created };
  }

  async getBalanceRule(workspaceId: string, id: string): Promise<BalanceRule> {
    const r = await this.store.getRecord<BalanceRule>(workspaceId, "balance_rule", id);
    if (!r) throw notFound("balance rule", id);
    return r.body;
  }

  async listBalanceRules(workspaceId: string): Promise<BalanceRule[]> {
    return (await listAll<BalanceRule>(this.store, workspaceId, "balance_rule")).map((r) => r.body);
  }

  async deleteBalanceRule(workspaceId: string, id: string): Promise<void> {
    if (!(await this.store.deleteRecord(workspaceId, "balance_rule", id))) throw notFound("balance rule", id);
    this.book.invalidate(workspaceId);
  }

  // ---- repricing ---------------------------------------------------------------------------------

  /**
   * After a price correction: recomputes the cost of the stored events of [from, to) (of one model,
   * or all) with the prices in force now, rewrites the events that changed, rebuilds the rollups,
   * adjusts the balances that debit rules charged for cost, and keeps an audit entry of what changed.
   * Events that brought their own cost keep it. Idempotent: a second run changes nothing.
   */
  async reprice(workspaceId: string, input: { from: string; to: string; model?: string }) {
    const from = parseInstant(input.from, "from");
    const to = parseInstant(input.to, "to");
    if (from >= to) throw invalid("from must be before to", { field: "from" });
    const now = this.clock.now();
    this.pricing.invalidate(workspaceId);
    await this.pricing.prepare(workspaceId);
    const book = await this.book.get(workspaceId);
    const costRules = book.balanceRules.filter((r) => book.meters.get(r.meter)?.value.includes("cost"));
    const wanted = input.model?.trim().toLowerCase();
    const updates: { id: string; values: Record<string, number>; priceRow: string | null }[] = [];
    const byModel = new Map<string, { events: number; before: bigint; after: bigint }>();
    /** customer → rule → change of units (pico-USD) the rule charged */
    const ruleDelta = new Map<string, Map<string, bigint>>();
    let scanned = 0;
    await this.store.scanEvents(workspaceId, { from, to }, (event) => {
      const model = event.dimensions.model;
      if (model === undefined || (wanted !== undefined && model.trim().toLowerCase() !== wanted)) return;
      // An event's own cost (no price row) is the producer's word: never repriced.
      if (event.values.cost !== undefined && event.priceRow === undefined) return;
      scanned++;
      const { cost: oldCost, ...values } = event.values;
      let result: ReturnType<Pricing["price"]>;
      try {
        result = this.pricing.price(workspaceId, values, event.dimensions, event.timestamp, "");
      } catch {
        return; // now refused (reject policy) or malformed: keep what was stored
      }
      const newCost = result.kind === "priced" ? result.cost : undefined;
      const newRow = result.kind === "priced" ? result.rowId : null;
      if (newCost === oldCost && newRow === (event.priceRow ?? null)) return;
      updates.push({ id: event.id, values, priceRow: newRow });
      const m = byModel.get(model) ?? { events: 0, before: 0n, after: 0n };
      m.events++;
      m.before += BigInt(oldCost ?? 0);
      m.after += BigInt(newCost ?? 0);
      byModel.set(model, m);
      for (const rule of costRules) {
        const meter = book.meters.get(rule.meter)!;
        if (!meterMatches(meter, { ...event, values })) continue;
        const delta = BigInt(newCost ?? 0) - BigInt(oldCost ?? 0);
        const perCustomer = ruleDelta.get(event.customer) ?? new Map<string, bigint>();
        perCustomer.set(rule.id, (perCustomer.get(rule.id) ?? 0n) + delta);
        ruleDelta.set(event.customer, perCustomer);
      }
    });
    const auditId = this.keys.id("reprice");
    if (updates.length > 0) {
      await this.store.updateEventValues(workspaceId, updates);
      await this.store.rebuildRollups();
      await this.limiter.forgetFamilies(workspaceId);
    }
    // Balances: more cost → the rule charges the difference; less → the difference comes back as a credit.
    const adjustments: { customer: string; rule: string; units: string; credits: number }[] = [];
    for (const [customer, rules] of ruleDelta) {
      for (const [ruleId, delta] of rules) {
        const rule = costRules.find((r) => r.id === ruleId)!;
        if (delta === 0n) continue;
        const key = `${auditId}/${ruleId}`;
        if (delta > 0n) {
          const applied = await this.balances.apply(workspaceId, customer, {
            kind: "usage",
            idempotencyKey: key,
            at: now,
            rule: ruleId,
            units: Number(delta),
            creditsPerUnit: rule.creditsPerUnit,
            unit: rule.unit,
            description: `reprice ${auditId}`,
          });
          adjustments.push({
            customer,
            rule: ruleId,
            units: delta.toString(),
            credits: -(applied as { amount: number }).amount,
          });
        } else {
          const refund = Number((-delta * BigInt(rule.creditsPerUnit)) / BigInt(rule.unit));
          if (refund > 0) {
            await this.balances.apply(workspaceId, customer, {
              kind: "credit",
              idempotencyKey: key,
              at: now,
              amount: refund,
              description: `reprice ${auditId}: refund`,
            });
          }
          adjustments.push({ customer, rule: ruleId, units: delta.toString(), credits: refund });
        }
      }
    }
    const audit = {
      id: auditId,
      kind: "reprice",
      at: formatInstant(now),
      from: input.from,
      to: input.to,
      ...(input.model !== undefined ? { model: input.model } : {}),
      events_scanned: scanned,
      events_changed: updates.length,
      models: [...byModel].map(([model, m]) => ({
        model,
        events: m.events,
        cost_before: formatPicoUsd(m.before),
        cost_after: formatPicoUsd(m.after),
      })),
      balance_adjustments: adjustments,
    };
    await this.store.putRecord(workspaceId, "audit", auditId, audit, now);
    return audit;
  }

  /** Audit entries (reprices, limit changes), oldest first. */
  async listAudit(workspaceId: string) {
    const rows = await listAll<Record<string, unknown>>(this.store, workspaceId, "audit");
    rows.sort((a, b) => a.updatedAt - b.updatedAt || (a.id < b.id ? -1 : 1));
    return rows.map((r) => r.body);
  }

  // ---- helpers --------------------------------------------------------------------------------

  private async list<E, B>(workspaceId: string, kind: "customer" | "plan" | "meter", page: PageInput) {
    const limit = page.limit ?? bounds.pageSizeDefault;
    const after = page.cursor === undefined ? undefined : decodeCursor(page.cursor);
    const rows = await this.store.listRecords<B>(workspaceId, kind, { after, limit: limit + 1 });
    const data = rows.slice(0, limit).map((r) => toEntity<E, B>(r));
    const result: Page<E> = { data };
    if (rows.length > limit) result.nextCursor = encodeCursor(rows[limit - 1]!.id);
    return result;
  }
}

export const DEFAULT_RESERVATION_TTL_S = 300;

/** A recorded event whose model class the customer's plan does not include (kept, and flagged). */
export interface FlaggedEvent {
  index: number;
  id: string;
  code: "FEATURE_NOT_INCLUDED";
  model_class: string;
}

export interface CheckInput {
  event: CheckEventInput;
  reserve?: { ttl_seconds?: number };
  features?: string[];
}

/** What a check that had to wait for it loaded (Engine.checkWith). */
interface CheckLoaded {
  customer?: CustomerContext;
  ent?: NonNullable<ReturnType<Entitlements["peek"]>>;
  book?: CompiledBook;
  prices?: boolean;
  account?: boolean;
}

export interface CheckEventInput {
  type: string;
  customer: string;
  values?: Record<string, number>;
  dimensions?: Record<string, string>;
}

export interface CommitResult {
  reservation: string;
  state: "committed";
  event_id: string;
  accepted: number;
  duplicates: number;
}

export interface CustomerLimitState {
  id: string;
  kind: "quota" | "rate" | "concurrency";
  limit: number;
  used: number;
  reserved: number;
  remaining: number;
  percentUsed: number;
  resetAt: number | null;
  enforcement: string;
  state: "ok" | "warning" | "critical" | "exceeded";
  group?: Record<string, string | null>;
}

export interface PageInput {
  cursor?: string;
  limit?: number;
}

function withoutCost(values: Record<string, number>): Record<string, number> {
  const { cost: _, ...rest } = values;
  return rest;
}

function toEntity<E, B>(r: StoredRecord<B>): E {
  return { id: r.id, ...r.body, createdAt: r.createdAt, updatedAt: r.updatedAt } as E;
}

function compareGroups(a: (string | null)[], b: (string | null)[]): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? "";
    const y = b[i] ?? "";
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** Cursors are opaque to clients: base64url of the last id of the page. */
export function encodeCursor(id: string): string {
  let bin = "";
  for (const byte of new TextEncoder().encode(id)) bin += String.fromCharCode(byte);
  return btoa(bin).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

export function decodeCursor(cursor: string): string {
  let id: string;
  try {
    const bin = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
    id = new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
  } catch {
    throw invalid("cursor is not valid", { field: "cursor" });
  }
  // Only cursors this server made: atob also takes whitespace, padding and stray bits.
  if (encodeCursor(id) !== cursor) throw invalid("cursor is not valid", { field: "cursor" });
  return id;
}
