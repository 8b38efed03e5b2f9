import type { Alert } from "../alerts/payload.js";
import type { CheckResult, LimitOutcome } from "../engine/limiter.js";
import { formatPicoUsd } from "../pricing/money.js";
import { percentUsed } from "../quota/decide.js";
import type { Enforcement } from "../quota/definitions.js";
import { formatInstant } from "../time.js";

/** What a simulation found for one limit of one customer. */
export interface LimitFinding {
  /** The limit's id; `balance` for the customer's credit balance. */
  limit: string;
  kind: LimitOutcome["kind"];
  enforcement: string;
  /** Requests this (hard) limit would have denied. */
  denied: number;
  /** Requests a soft or shadow limit would have let past its amount (overage; shadow: would-deny). */
  overage: number;
  /** When a request first went past the limit (RFC 3339), or null. */
  first_hit_at: string | null;
  /** The highest share of the limit in use after an admitted request, percent (two decimals). */
  peak_percent: number;
  /** Threshold alerts (80/95/100 %, or the limit's thresholds) that would have fired. */
  alerts: { warning: number; critical: number; exceeded: number };
}

export interface CustomerFinding {
  customer: string;
  /** Stored events replayed. */
  events: number;
  allowed: number;
  denied: number;
  /** Allowed requests that went past at least one soft or shadow limit. */
  overage: number;
  /** Stored cost of the replayed events (USD, decimal string). */
  cost_actual: string;
  /** Cost of the events that would have been admitted, under the proposed prices. */
  cost_proposed: string;
  /** Cost of every replayed event under the proposed prices (admitted or not): prices alone. */
  cost_proposed_all: string;
  /** Credits the live debit rules charge for the replayed events. */
  credits_actual: number;
  /** Credits the proposed debit rules would have charged for the admitted events. */
  credits_proposed: number;
  limits: LimitFinding[];
}

export interface SimulationResult {
  from: string;
  to: string;
  customers_filter: string[] | null;
  totals: {
    events: number;
    allowed: number;
    denied: number;
    overage: number;
    customers: number;
    cost_actual: string;
    cost_proposed: string;
    credits_actual: number;
    credits_proposed: number;
    alerts: number;
  };
  customers: CustomerFinding[];
  /** The first alerts that would have fired (up to alertSampleMax), in time order. */
  alerts: Alert[];
  /** Wall time of the replay and its rate (not deterministic). */
  elapsed_ms: number;
  events_per_second: number;
}

interface LimitAcc {
  limit: string;
  kind: LimitOutcome["kind"];
  enforcement: string;
  denied: number;
  overage: number;
  firstHit: number | null;
  /** Peak usage and the limit it was measured against. */
  peakUsed: number;
  peakOf: number;
  warning: number;
  critical: number;
  exceeded: number;
  /** Another kind's limit with the same id. */
  next: LimitAcc | undefined;
}

/**
 * An exact sum of non-negative safe integers without a BigInt per addition: a number part kept
 * below 2^52 (where every integer is exact), folded into a bigint when it would pass it.
 */
class Sum {
  private small = 0;
  private big = 0n;
  add(n: number): void {
    if (n > 2 ** 52 || this.small > 2 ** 52 - n) {
      this.big += BigInt(this.small) + BigInt(n);
      this.small = 0;
    } else this.small += n;
  }
  value(): bigint {
    return this.big + BigInt(this.small);
  }
}

interface CustomerAcc {
  events: number;
  allowed: number;
  denied: number;
  overage: number;
  costActual: Sum;
  costProposed: Sum;
  costProposedAll: Sum;
  /** rule → units × creditsPerUnit summed, and the rule's unit (credits = floor(sum / unit)). */
  creditsActual: Map<string, { scaled: bigint; unit: bigint }>;
  creditsProposed: Map<string, { scaled: bigint; unit: bigint }>;
  limits: Map<string, LimitAcc>;
}

export const alertSampleMax = 1_000;

/**
 * Adds up what a replay shows, per customer and limit. Memory grows with customers × limits, not
 * with events. Pure: the runner feeds it check results, stored events and alerts.
 */
export class SimulationTally {
  private readonly customers = new Map<string, CustomerAcc>();
  private readonly alertSample: Alert[] = [];
  private alertCount = 0;

  private customer(id: string): CustomerAcc {
    let c = this.customers.get(id);
    if (!c) {
      c = {
        events: 0,
        allowed: 0,
        denied: 0,
        overage: 0,
        costActual: new Sum(),
        costProposed: new Sum(),
        costProposedAll: new Sum(),
        creditsActual: new Map(),
        creditsProposed: new Map(),
        limits: new Map(),
      };
      this.customers.set(id, c);
    }
    return c;
  }

  private limit(c: CustomerAcc, o: Pick<LimitOutcome, "id" | "kind" | "enforcement">): LimitAcc {
    // Keyed by id, then kind (ids of different kinds may be equal): no key string per outcome.
    let l = c.limits.get(o.id);
    while (l !== undefined && l.kind !== o.kind) l = l.next;
    if (!l) {
      l = {
        limit: o.id,
        kind: o.kind,
        enforcement: o.enforcement,
        denied: 0,
        overage: 0,
        firstHit: null,
        peakUsed: 0,
        peakOf: 1,
        warning: 0,
        critical: 0,
        exceeded: 0,
        next: c.limits.get(o.id),
      };
      c.limits.set(o.id, l);
    }
    return l;
  }

  /** One replayed event: its stored cost, and the check's answer at its timestamp. */
  check(customer: string, at: number, actualCost: number, result: CheckResult): void {
    const c = this.customer(customer);
    c.events++;
    c.costActual.add(actualCost);
    if (result.allowed) c.allowed++;
    else c.denied++;
    let over = false;
    for (const o of result.limits) {
      const l = this.limit(c, o);
      if (o.exceeded) {
        if (l.firstHit === null) l.firstHit = at;
        if (!o.allowed) {
          // Only the limits that refused count the denial (a request refused by a rate limit is
          // not also counted against a quota it would have fit in).
          l.denied++;
        } else if (result.allowed) {
          l.overage++;
          over = true;
        }
      }
      // Usage after the request: what the limit reports remaining, when this request was admitted;
      // otherwise the usage it found (a refused request adds nothing).
      const used =
        (result.allowed && !o.exceeded) || o.used === undefined
          ? o.limit - o.remaining
          : o.used + (o.reserved ?? 0);
      const of = Math.max(1, o.limit);
      if (used / of > l.peakUsed / l.peakOf) {
        l.peakUsed = used;
        l.peakOf = of;
      }
    }
    if (over) c.overage++;
  }

  /** An event the simulated engine stored: its cost under the proposed prices and credits under the rules. */
  recorded(
    customer: string,
    cost: number | undefined,
    usage: { rule: string; units: number; creditsPerUnit: number; unit: number }[] | undefined,
  ): void {
    const c = this.customer(customer);
    c.costProposed.add(cost ?? 0);
    if (usage) addCredits(c.creditsProposed, usage);
  }

  /** The proposed price of a replayed event, whether or not it would have been admitted. */
  priced(customer: string, cost: number | undefined): void {
    this.customer(customer).costProposedAll.add(cost ?? 0);
  }

  /** Credits the live rules charge for a replayed event. */
  actualCredits(
    customer: string,
    usage: { rule: string; units: number; creditsPerUnit: number; unit: number }[],
  ) {
    addCredits(this.customer(customer).creditsActual, usage);
  }

  alert(alert: Alert): void {
    this.alertCount++;
    if (this.alertSample.length < alertSampleMax) this.alertSample.push(alert);
    const data = alert.data as { limit?: { id?: string; enforcement?: Enforcement } };
    if (alert.customer === null || data.limit?.id === undefined) return;
    const c = this.customer(alert.customer);
    const l = this.limit(c, {
      id: data.limit.id,
      kind: "quota",
      enforcement: data.limit.enforcement ?? "hard",
    });
    if (alert.type === "limit.warning") l.warning++;
    else if (alert.type === "limit.critical") l.critical++;
    else if (alert.type === "limit.exceeded") l.exceeded++;
  }

  result(input: {
    from: number;
    to: number;
    customers: string[] | null;
    elapsedMs: number;
  }): SimulationResult {
    const customers: CustomerFinding[] = [];
    const totals = {
      events: 0,
      allowed: 0,
      denied: 0,
      overage: 0,
      customers: 0,
      costActual: 0n,
      costProposed: 0n,
      creditsActual: 0,
      creditsProposed: 0,
    };
    for (const [id, c] of [...this.customers].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
      if (c.events === 0) continue;
      const creditsActual = sumCredits(c.creditsActual);
      const creditsProposed = sumCredits(c.creditsProposed);
      customers.push({
        customer: id,
        events: c.events,
        allowed: c.allowed,
        denied: c.denied,
        overage: c.overage,
        cost_actual: formatPicoUsd(c.costActual.value()),
        cost_proposed: formatPicoUsd(c.costProposed.value()),
        cost_proposed_all: formatPicoUsd(c.costProposedAll.value()),
        credits_actual: creditsActual,
        credits_proposed: creditsProposed,
        limits: [...c.limits.values()]
          .flatMap((first) => {
            const all: LimitAcc[] = [];
            for (let l: LimitAcc | undefined = first; l; l = l.next) all.push(l);
            return all;
          })
          .sort((a, b) => (a.limit < b.limit ? -1 : a.limit > b.limit ? 1 : a.kind < b.kind ? -1 : 1))
          .map((l) => ({
            limit: l.limit,
            kind: l.kind,
            enforcement: l.enforcement,
            denied: l.denied,
            overage: l.overage,
            first_hit_at: l.firstHit === null ? null : formatInstant(l.firstHit),
            peak_percent: percentUsed(l.peakUsed, l.peakOf),
            alerts: { warning: l.warning, critical: l.critical, exceeded: l.exceeded },
          })),
      });
      totals.events += c.events;
      totals.allowed += c.allowed;
      totals.denied += c.denied;
      totals.overage += c.overage;
      totals.customers++;
      totals.costActual += c.costActual.value();
      totals.costProposed += c.costProposed.value();
      totals.creditsActual += creditsActual;
      totals.creditsProposed += creditsProposed;
    }
    return {
      from: formatInstant(input.from),
      to: formatInstant(input.to),
      customers_filter: input.customers,
      totals: {
        events: totals.events,
        allowed: totals.allowed,
        denied: totals.denied,
        overage: totals.overage,
        customers: totals.customers,
        cost_actual: formatPicoUsd(totals.costActual),
        cost_proposed: formatPicoUsd(totals.costProposed),
        credits_actual: totals.creditsActual,
        credits_proposed: totals.creditsProposed,
        alerts: this.alertCount,
      },
      customers,
      alerts: [...this.alertSample].sort((a, b) => a.createdAt - b.createdAt),
      elapsed_ms: Math.round(input.elapsedMs),
      events_per_second: input.elapsedMs > 0 ? Math.round((totals.events * 1000) / input.elapsedMs) : 0,
    };
  }
}

function addCredits(
  into: Map<string, { scaled: bigint; unit: bigint }>,
  usage: { rule: string; units: number; creditsPerUnit: number; unit: number }[],
): void {
  for (const u of usage) {
    let r = into.get(u.rule);
    if (!r) {
      r = { scaled: 0n, unit: BigInt(u.unit) };
      into.set(u.rule, r);
    }
    r.scaled += BigInt(u.units) * BigInt(u.creditsPerUnit);
  }
}

/** Debit rules carry fractions per rule, so what a run of usage costs is floor(Σ units × credits / unit). */
function sumCredits(rules: Map<string, { scaled: bigint; unit: bigint }>): number {
  let total = 0n;
  for (const r of rules.values()) total += r.scaled / r.unit;
  return Number(total);
}

// ---- output formats ---------------------------------------------------------------------------

/** One row per customer and limit (and one per customer without any limit), for CSV and tables. */
export function simulationRows(result: SimulationResult): Record<string, string | number>[] {
  const rows: Record<string, string | number>[] = [];
  for (const c of result.customers) {
    const base = {
      customer: c.customer,
      events: c.events,
      allowed: c.allowed,
      denied: c.denied,
      overage: c.overage,
      cost_actual: c.cost_actual,
      cost_proposed: c.cost_proposed,
      credits_actual: c.credits_actual,
      credits_proposed: c.credits_proposed,
    };
    const empty = {
      limit: "",
      kind: "",
      limit_denied: "",
      limit_overage: "",
      first_hit_at: "",
      peak_percent: "",
      alerts_80: "",
      alerts_95: "",
      alerts_100: "",
    };
    if (c.limits.length === 0) rows.push({ ...base, ...empty });
    for (const l of c.limits) {
      rows.push({
        ...base,
        limit: l.limit,
        kind: l.kind,
        limit_denied: l.denied,
        limit_overage: l.overage,
        first_hit_at: l.first_hit_at ?? "",
        peak_percent: l.peak_percent,
        alerts_80: l.alerts.warning,
        alerts_95: l.alerts.critical,
        alerts_100: l.alerts.exceeded,
      });
    }
  }
  return rows;
}

export const simulationColumns = [
  "customer",
  "events",
  "allowed",
  "denied",
  "overage",
  "cost_actual",
  "cost_proposed",
  "credits_actual",
  "credits_proposed",
  "limit",
  "kind",
  "limit_denied",
  "limit_overage",
  "first_hit_at",
  "peak_percent",
  "alerts_80",
  "alerts_95",
  "alerts_100",
] as const;

/** RFC 4180 CSV of simulationRows. */
export function simulationCsv(result: SimulationResult): string {
  const esc = (v: string | number) => {
    const s = String(v);
    return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  };
  const lines = [simulationColumns.join(",")];
  for (const r of simulationRows(result)) lines.push(simulationColumns.map((k) => esc(r[k] ?? "")).join(","));
  return `${lines.join("\r\n")}\r\n`;
}

/** A plain-text table for a terminal: one line per customer and limit, then the totals. */
export function simulationTable(result: SimulationResult): string {
  const cols = [
    "customer",
    "limit",
    "events",
    "denied",
    "overage",
    "first_hit_at",
    "peak_percent",
    "alerts_80",
    "alerts_95",
    "alerts_100",
    "cost_actual",
    "cost_proposed",
    "credits_actual",
    "credits_proposed",
  ];
  const rows = simulationRows(result).map((r) => {
    const out: Record<string, string> = {};
    for (const k of cols) out[k] = String(r[k] ?? "");
    // The limit's own denials, per limit; the customer's events and money once per customer.
    if (r.limit !== "") {
      out.denied = String(r.limit_denied);
      out.overage = String(r.limit_overage);
      out.limit = `${r.limit} (${r.kind})`;
    }
    return out;
  });
  const widths = cols.map((k) => Math.max(k.length, ...rows.map((r) => r[k]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  const out = [line(cols), line(widths.map((w) => "-".repeat(w)))];
  for (const r of rows) out.push(line(cols.map((k) => r[k]!)));
  const t = result.totals;
  out.push("");
  out.push(
    `${t.events} events of ${t.customers} customers from ${result.from} to ${result.to}: ` +
      `${t.allowed} allowed, ${t.denied} denied, ${t.overage} over a soft limit; ${t.alerts} alerts`,
  );
  out.push(
    `cost ${t.cost_actual} USD actual, ${t.cost_proposed} USD proposed; ` +
      `credits ${t.credits_actual} actual, ${t.credits_proposed} proposed`,
  );
  return `${out.join("\n")}\n`;
}
