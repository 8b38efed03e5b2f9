import type { Clock } from "../clock.js";
import { invalid } from "../errors.js";
import { bounds } from "../limits.js";
import type { Store } from "../ports/store.js";
import { parsePicoUsd } from "../pricing/money.js";
import type {
  AnyLimit,
  ConcurrencyLimit,
  ConcurrencyLimitInput,
  QuotaInput,
  QuotaLimit,
  RateLimit,
  RateLimitInput,
} from "../quota/definitions.js";
import { toConcurrencyLimit, toQuota, toRateLimit } from "../quota/definitions.js";
import type { MeterDef } from "../types.js";
import type { BalanceRule } from "./balances.js";

export interface LimitSet {
  quotas: QuotaLimit[];
  rates: RateLimit[];
  concurrency: ConcurrencyLimit[];
  /** The first `expires_at` of a temporary raise in the set: from then on the set is recomputed. */
  validUntil: number;
}

interface ByScope {
  workspace: Map<string, AnyLimit>;
  plans: Map<string, Map<string, AnyLimit>>;
  customers: Map<string, Map<string, AnyLimit>>;
}

/** A workspace's definitions compiled for lookups on the hot path. */
export class CompiledBook {
  /** plan ("" for none) → customer → set; nested so that a lookup builds no key string. */
  private readonly effectiveCache = new Map<string, Map<string, LimitSet>>();
  private effectiveCached = 0;
  constructor(
    readonly meters: Map<string, MeterDef>,
    private readonly limits: ByScope,
    /** Debit rules: recorded usage that the customer's balance pays for. */
    readonly balanceRules: readonly BalanceRule[] = [],
    /** The clock that decides whether a temporary raise (`expiresAt`) still applies. */
    private readonly now: () => number = () => Number.NEGATIVE_INFINITY,
  ) {}

  /**
   * The limits that apply to a customer: the workspace's, then its plan's, with the customer's own
   * limit of the same id overriding the plan's (per kind).
   */
  effective(customerId: string, planId: string | null): LimitSet {
    const hit = this.effectiveCache.get(planId ?? "")?.get(customerId);
    // A set with a temporary raise is cached only until the raise expires: the book itself is
    // cached for as long as no definition changes, so expiry is decided here, against the clock.
    if (hit && (hit.validUntil === Number.POSITIVE_INFINITY || this.now() < hit.validUntil)) return hit;
    const merged = new Map<string, AnyLimit>();
    for (const l of (planId && this.limits.plans.get(planId)?.values()) || [])
      merged.set(`${l.kind}:${l.id}`, l);
    let validUntil = Number.POSITIVE_INFINITY;
    const customerLimits = this.limits.customers.get(customerId)?.values() ?? [];
    const now = this.now();
    for (const l of customerLimits) {
      if (l.expiresAt !== undefined) {
        if (now >= l.expiresAt) continue; // expired: the plan's limit of the same id is back
        validUntil = Math.min(validUntil, l.expiresAt);
      }
      merged.set(`${l.kind}:${l.id}`, l);
    }
    const all = [...this.limits.workspace.values(), ...merged.values()];
    const set: LimitSet = {
      quotas: all.filter((l): l is QuotaLimit => l.kind === "quota"),
      rates: all.filter((l): l is RateLimit => l.kind === "rate"),
      concurrency: all.filter((l): l is ConcurrencyLimit => l.kind === "concurrency"),
      validUntil,
    };
    if (this.effectiveCached > 100_000) {
      this.effectiveCache.clear();
      this.effectiveCached = 0;
    }
    let byCustomer = this.effectiveCache.get(planId ?? "");
    if (!byCustomer) {
      byCustomer = new Map();
      this.effectiveCache.set(planId ?? "", byCustomer);
    }
    byCustomer.set(customerId, set);
    this.effectiveCached++;
    return set;
  }
}

const PAGE = 1_000;

/** Every record of a kind in a workspace, page by page. */
export async function listAll<T>(store: Store, ws: string, kind: Parameters<Store["listRecords"]>[1]) {
  const out: { id: string; body: T; updatedAt: number }[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await store.listRecords<T>(ws, kind, { after, limit: PAGE });
    out.push(...page);
    if (page.length < PAGE) return out;
    after = page[page.length - 1]!.id;
  }
}

interface PlanBody {
  limits: (QuotaInput & { id: string })[];
  rateLimits: (RateLimitInput & { id: string })[];
  concurrencyLimits: (ConcurrencyLimitInput & { id: string })[];
}

/** Loads and caches each workspace's compiled book; any definition write invalidates it. */
export class LimitBook {
  private readonly cache = new Map<string, Promise<CompiledBook>>();
  /** The books of `cache` that have loaded, for the hot path to use without awaiting. */
  private readonly loaded = new Map<string, CompiledBook>();
  constructor(
    private readonly store: Store,
    private readonly clock?: Clock,
  ) {}

  get(workspaceId: string): Promise<CompiledBook> {
    let book = this.cache.get(workspaceId);
    if (!book) {
      const loading = this.load(workspaceId);
      book = loading;
      loading.then(
        (b) => {
          // Only if no definition was written (invalidate) while it loaded.
          if (this.cache.get(workspaceId) === loading) this.loaded.set(workspaceId, b);
        },
        () => this.cache.delete(workspaceId),
      );
      this.cache.set(workspaceId, book);
    }
    return book;
  }

  /** The workspace's book if it is loaded and current, without waiting; otherwise use `get`. */
  peek(workspaceId: string): CompiledBook | undefined {
    return this.loaded.get(workspaceId);
  }

  /** Told of every invalidation (this process's writes, and other processes' under a shared limiter). */
  readonly onInvalidate: ((workspaceId: string) => void)[] = [];

  invalidate(workspaceId: string): void {
    this.cache.delete(workspaceId);
    this.loaded.delete(workspaceId);
    for (const listener of this.onInvalidate) listener(workspaceId);
  }

  private async load(ws: string): Promise<CompiledBook> {
    const meters = new Map<string, MeterDef>();
    for (const r of await listAll<Omit<MeterDef, "id">>(this.store, ws, "meter")) {
      meters.set(r.id, { ...r.body, id: r.id } as MeterDef);
    }
    const byScope: ByScope = { workspace: new Map(), plans: new Map(), customers: new Map() };
    const add = (l: AnyLimit) => {
      const key = `${l.kind}:${l.id}`;
      if (l.scope.kind === "workspace") byScope.workspace.set(key, l);
      else if (l.scope.kind === "plan") mapOf(byScope.plans, l.scope.plan).set(key, l);
      else mapOf(byScope.customers, l.scope.customer).set(key, l);
    };
    // Limits a plan lists inline come first; a PUT /v1/limits record of the same id and plan wins.
    for (const p of await listAll<PlanBody>(this.store, ws, "plan")) {
      const scope = { kind: "plan" as const, plan: p.id };
      // (As stored: a spend cap's amount is still the USD string it was sent as.)
      for (const l of p.body.limits ?? []) add(toQuota(l.id, scope, withPicoAmount(l), 0));
      for (const l of p.body.rateLimits ?? []) add(toRateLimit(l.id, scope, l, 0));
      for (const l of p.body.concurrencyLimits ?? []) add(toConcurrencyLimit(l.id, scope, l, 0));
    }
    for (const kind of ["limit", "rate_limit", "concurrency_limit"] as const) {
      for (const r of await listAll<AnyLimit>(this.store, ws, kind)) add(r.body);
    }
    const rules = (await listAll<BalanceRule>(this.store, ws, "balance_rule")).map((r) => r.body);
    const clock = this.clock;
    return new CompiledBook(meters, byScope, rules, clock ? () => clock.now() : undefined);
  }
}

function mapOf<K, V>(m: Map<K, Map<string, V>>, k: K): Map<string, V> {
  let inner = m.get(k);
  if (!inner) {
    inner = new Map();
    m.set(k, inner);
  }
  return inner;
}

/**
 * A quota whose amount is a spend cap (a decimal USD string, on a meter over cost) with the amount in
 * pico-USD, the unit values.cost is counted in; other quotas as they are.
 */
export function withPicoAmount<Q extends QuotaInput>(q: Q): Q {
  const amount = q.amount as unknown;
  if (typeof amount !== "string") return q;
  const pico = parsePicoUsd(amount, { field: "amount" });
  if (pico > BigInt(bounds.amountMax)) {
    throw invalid("amount is more than 9007.199254740991 USD", { field: "amount" });
  }
  return { ...q, amount: Number(pico) };
}
