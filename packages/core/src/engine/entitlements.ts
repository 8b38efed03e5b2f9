/**
 * Entitlements: what a customer's plan includes (feature gates and model classes), decided before any
 * counter moves. The decision (`decideEntitlement`) is pure; `Entitlements` keeps each workspace's
 * model-class map and plan terms in memory so that a check decides without awaiting.
 */
import { TollgateError } from "../errors.js";
import { meterMatches, meterValue } from "../meter/meter.js";
import { periodWindow } from "../period/index.js";
import {
  EMPTY_MODEL_CLASSES,
  ModelClassMap,
  type ModelClassSettings,
  type ModelClassSettingsInput,
  presentModelClassSettings,
  toModelClassSettings,
} from "../plans/model-classes.js";
import {
  EMPTY_TERMS,
  formatCharge,
  type OverageLine,
  overageLine,
  type PlanTerms,
  presentPlanTerms,
  sumCharges,
  termsOf,
} from "../plans/terms.js";
import type { Store } from "../ports/store.js";
import { formatPicoUsd } from "../pricing/money.js";
import { type AnyLimit, presentLimit } from "../quota/definitions.js";
import { formatInstant, parseInstant } from "../time.js";
import type { Customer, MeterDef, UsageEvent } from "../types.js";
import { listAll } from "./book.js";

/** The setting record (kind "setting") that holds the workspace's model-class map. */
export const MODEL_CLASSES_SETTING = "model_classes";
/** The dimension an event's model class is recorded under (derived from `dimensions.model`). */
export const MODEL_CLASS_DIMENSION = "model_class";
/** The dimension that flags a recorded event whose model class the customer's plan does not include. */
export const ENTITLEMENT_FLAG_DIMENSION = "entitlement";

export type EntitlementDecision =
  | { allowed: true }
  | { allowed: false; reason: "feature"; feature: string }
  | { allowed: false; reason: "model_class"; modelClass: string; model: string };

/**
 * Whether a plan's terms allow a request. `features` are the features the request needs; `model`
 * and `modelClass` come from the event (`modelClass` null: the model has no class). A customer with
 * no plan (`terms` null) is not gated. Features are checked first, in the order given.
 */
export function decideEntitlement(
  terms: PlanTerms | null,
  features: readonly string[],
  model: string | undefined,
  modelClass: string | null,
): EntitlementDecision {
  if (terms === null) return { allowed: true };
  for (const f of features)
    if (terms.features[f] !== true) return { allowed: false, reason: "feature", feature: f };
  if (
    model !== undefined &&
    modelClass !== null &&
    terms.modelClasses !== null &&
    !terms.modelClasses.includes(modelClass)
  ) {
    return { allowed: false, reason: "model_class", modelClass, model };
  }
  return { allowed: true };
}

/** The FEATURE_NOT_INCLUDED (403) error of a denial. */
export function entitlementError(d: Exclude<EntitlementDecision, { allowed: true }>, plan: string | null) {
  return d.reason === "feature"
    ? new TollgateError("FEATURE_NOT_INCLUDED", `plan ${plan} does not include feature ${d.feature}`, {
        plan,
        feature: d.feature,
      })
    : new TollgateError(
        "FEATURE_NOT_INCLUDED",
        `plan ${plan} does not include model class ${d.modelClass} (model ${d.model})`,
        { plan, model: d.model, model_class: d.modelClass },
      );
}

interface WorkspaceEntitlements {
  classes: ModelClassMap;
  plans: Map<string, PlanTerms>;
  /** Whether any plan gates anything: when not, a check pays one Map look-up. */
  gated: boolean;
}

/** Each workspace's model-class map and plan terms, loaded once and dropped on any change to them. */
export class Entitlements {
  private readonly loading = new Map<string, Promise<WorkspaceEntitlements>>();
  private readonly loaded = new Map<string, WorkspaceEntitlements>();

  constructor(private readonly store: Store) {}

  /** The workspace's entitlements if loaded, without waiting. */
  peek(workspaceId: string): WorkspaceEntitlements | undefined {
    return this.loaded.get(workspaceId);
  }

  get(workspaceId: string): Promise<WorkspaceEntitlements> {
    const hit = this.loaded.get(workspaceId);
    if (hit) return Promise.resolve(hit);
    let p = this.loading.get(workspaceId);
    if (!p) {
      const pending = this.load(workspaceId);
      p = pending;
      this.loading.set(workspaceId, pending);
      pending.then(
        (w) => {
          if (this.loading.get(workspaceId) === pending) this.loaded.set(workspaceId, w);
        },
        () => this.loading.delete(workspaceId),
      );
    }
    return p;
  }

  invalidate(workspaceId: string): void {
    this.loading.delete(workspaceId);
    this.loaded.delete(workspaceId);
  }

  private async load(ws: string): Promise<WorkspaceEntitlements> {
    const setting = await this.store.getRecord<ModelClassSettings>(ws, "setting", MODEL_CLASSES_SETTING);
    const classes = new ModelClassMap(setting?.body ?? EMPTY_MODEL_CLASSES);
    const plans = new Map<string, PlanTerms>();
    let gated = false;
    for (const p of await listAll<Partial<PlanTerms>>(this.store, ws, "plan")) {
      const terms = termsOf(p.body);
      plans.set(p.id, terms);
      if (terms.modelClasses !== null || Object.keys(terms.features).length > 0) gated = true;
    }
    return { classes, plans, gated };
  }
}

// ---- what the routes show: a customer's entitlements, its overage, the model-class map -------------

/** The slice of the engine the read models below need (kept narrow so that they stay testable). */
export interface EntitlementsHost {
  store: Store;
  clock: { now(): number };
  entitlements: Entitlements;
  getCustomer(workspaceId: string, id: string): Promise<Customer>;
  getMeter(workspaceId: string, id: string): Promise<MeterDef>;
  listLimits(workspaceId: string, kind: "limit" | "rate_limit" | "concurrency_limit"): Promise<AnyLimit[]>;
}

export async function getModelClasses(store: Store, workspaceId: string) {
  const r = await store.getRecord<ModelClassSettings>(workspaceId, "setting", MODEL_CLASSES_SETTING);
  return presentModelClassSettings(r?.body ?? EMPTY_MODEL_CLASSES);
}

export async function putModelClasses(
  host: Pick<EntitlementsHost, "store" | "clock" | "entitlements">,
  workspaceId: string,
  input: ModelClassSettingsInput,
) {
  const settings = toModelClassSettings(input);
  await host.store.putRecord(workspaceId, "setting", MODEL_CLASSES_SETTING, settings, host.clock.now());
  host.entitlements.invalidate(workspaceId);
  return presentModelClassSettings(settings);
}

/** GET /v1/customers/{id}/entitlements: features, model classes, included usage, active raises. */
export async function customerEntitlements(host: EntitlementsHost, workspaceId: string, customerId: string) {
  const customer = await host.getCustomer(workspaceId, customerId);
  const ent = await host.entitlements.get(workspaceId);
  const terms = customer.plan === null ? null : (ent.plans.get(customer.plan) ?? null);
  const known = ent.classes.classes();
  const now = host.clock.now();
  const raises: Record<string, unknown>[] = [];
  for (const kind of ["limit", "rate_limit", "concurrency_limit"] as const) {
    for (const l of await host.listLimits(workspaceId, kind)) {
      if (l.scope.kind !== "customer" || l.scope.customer !== customerId) continue;
      if (l.expiresAt === undefined || l.expiresAt <= now) continue;
      raises.push({ kind: l.kind, ...presentLimit(l) });
    }
  }
  const presented = presentPlanTerms(terms ?? EMPTY_TERMS);
  const cycle = periodWindow("month", now, {
    timezone: customer.timezone,
    billingAnchor: customer.billingAnchor,
  });
  return {
    customer: customer.id,
    plan: customer.plan,
    /** The billing month now (the customer's zone and anchor): overage and monthly limits count in it. */
    billing_period: { start: formatInstant(cycle.start), end: formatInstant(cycle.end as number) },
    /** Without a plan nothing is gated. */
    gated: terms !== null,
    features: presented.features,
    model_classes: terms === null ? null : presented.model_classes,
    /** Each class the workspace's map names: whether the customer may use it. */
    model_class_access: Object.fromEntries(
      known.map((c) => [c, terms === null || terms.modelClasses === null || terms.modelClasses.includes(c)]),
    ),
    overage: presented.overage,
    raises,
  };
}

/**
 * GET /v1/customers/{id}/overage: for the customer's billing period (month or week, in its time zone
 * and from its billing anchor) that contains `at`, per overage term of its plan: included, used,
 * overage units, and the charge, exact. Usage is read from the stored events (and, past retention,
 * the hourly rollups), so it agrees with meter queries.
 */
export async function customerOverage(
  host: EntitlementsHost,
  workspaceId: string,
  customerId: string,
  q: { at?: string; period?: "month" | "week" },
) {
  const customer = await host.getCustomer(workspaceId, customerId);
  const at = q.at === undefined ? host.clock.now() : parseInstant(q.at, "query.at");
  const period = q.period ?? "month";
  const w = periodWindow(period, at, { timezone: customer.timezone, billingAnchor: customer.billingAnchor });
  const end = w.end as number;
  const ent = await host.entitlements.get(workspaceId);
  const terms = customer.plan === null ? EMPTY_TERMS : (ent.plans.get(customer.plan) ?? EMPTY_TERMS);
  const lines: (OverageLine & { cost: boolean })[] = [];
  for (const term of terms.overage) {
    let meter: MeterDef;
    try {
      meter = await host.getMeter(workspaceId, term.meter);
    } catch {
      continue; // the meter was deleted after the plan named it
    }
    if (meter.aggregation !== "sum" && meter.aggregation !== "count") continue; // redefined since
    let used = 0n;
    await host.store.scanUsage(
      workspaceId,
      { types: [meter.eventType], customer: customerId, from: w.start, to: end },
      (e) => {
        if (meterMatches(meter, e)) used += BigInt(meterValue(meter, e));
      },
      (r) => {
        if (!meterMatches(meter, r as unknown as UsageEvent)) return;
        used += BigInt(
          meter.aggregation === "count" ? r.events : meterValue(meter, r as unknown as UsageEvent),
        );
      },
    );
    lines.push({ ...overageLine(term, used), cost: term.cost === true });
  }
  const total = sumCharges(lines);
  const amount = (v: bigint, cost: boolean) => (cost ? formatPicoUsd(v) : bigOrNumber(v));
  return {
    customer: customer.id,
    plan: customer.plan,
    period: { unit: period, start: formatInstant(w.start), end: formatInstant(end) },
    data: lines.map((l) => ({
      meter: l.meter,
      included: amount(l.included, l.cost),
      used: amount(l.used, l.cost),
      overage_units: amount(l.overageUnits, l.cost),
      unit_price: l.unitPrice,
      overage_charge: formatCharge(l.charge, l.chargeScale),
    })),
    total_charge: formatCharge(total.charge, total.chargeScale),
  };
}

/** A JSON number while exact, a decimal string past 2^53-1 (like meter queries). */
const bigOrNumber = (v: bigint): number | string =>
  v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();

/**
 * The overage columns of the monthly report (GET /v1/usage/summary?view=monthly&customer=): for each
 * month row, the customer's billing period that contains the middle of the month (the month itself
 * for a customer without an anchor in UTC), and its overage. Null when the customer does not exist.
 */
export async function monthlyOverage(
  host: EntitlementsHost,
  workspaceId: string,
  customerId: string,
  months: readonly { start: number; end: number }[],
) {
  try {
    await host.getCustomer(workspaceId, customerId);
  } catch (e) {
    if (e instanceof TollgateError && e.code === "NOT_FOUND") return null;
    throw e;
  }
  const out: Awaited<ReturnType<typeof customerOverage>>[] = [];
  for (const m of months) {
    const middle = m.start + Math.floor((m.end - m.start) / 2);
    out.push(await customerOverage(host, workspaceId, customerId, { at: formatInstant(middle) }));
  }
  return out;
}
