import {
  type CalendarUnit,
  DAY_MS,
  HOUR_MS,
  nextWindowStartUtc,
  windowStartUtc,
} from "../period/calendar.js";
import type { RollupResolution, RollupTotals } from "../ports/store.js";

/**
 * Usage reports from rollups: which rollup rows to read for a range, and how to merge them into report
 * rows (one per period and group). Pure; periods are UTC calendar windows (weeks from Monday).
 */
export type Granularity = CalendarUnit;

/** Column names of a report row; a dimension with one of these names cannot be a group column. */
export const REPORT_COLUMNS = [
  "period_start",
  "period_end",
  "tokens_in",
  "tokens_out",
  "tokens_total",
  "steps",
  "requests",
  "cost",
] as const;

/** Exact sums: tokens, steps and requests are counts; cost is integer pico-USD. */
export interface UsageTotals {
  tokensIn: bigint;
  tokensOut: bigint;
  steps: bigint;
  requests: bigint;
  cost: bigint;
}

export interface UsageRow {
  periodStart: number;
  periodEnd: number;
  /** One value per group_by entry, in its order; null where the dimension was missing. */
  group: (string | null)[];
  totals: UsageTotals;
}

export const zeroTotals = (): UsageTotals => ({
  tokensIn: 0n,
  tokensOut: 0n,
  steps: 0n,
  requests: 0n,
  cost: 0n,
});

export function addTotals(into: UsageTotals, t: UsageTotals): void {
  into.tokensIn += t.tokensIn;
  into.tokensOut += t.tokensOut;
  into.steps += t.steps;
  into.requests += t.requests;
  into.cost += t.cost;
}

/**
 * One read of the rollups: whole hours, or whole UTC days (24 times fewer rows). A `subtract` read
 * takes its hours away again: a ragged end of more than half a day is read as its whole day minus
 * the hours outside the range (exact: sums subtract).
 */
export interface RollupRead {
  resolution: RollupResolution;
  from: number;
  to: number;
  subtract?: true;
}

/** A ragged end longer than this is read as a whole day minus the rest of it. */
const EDGE_HOURS_MAX = 12;

/**
 * The rollup reads that cover [from, to) (whole hours) exactly: hours for an hourly report, else
 * whole UTC days, and at each ragged end either its hours or (when that is more than half a day)
 * its whole day minus the hours outside the range.
 */
export function planReads(from: number, to: number, granularity: Granularity | null): RollupRead[] {
  if (from % HOUR_MS !== 0 || to % HOUR_MS !== 0) throw new RangeError("reports read whole hours");
  if (from >= to) return [];
  if (granularity === "hour") return [{ resolution: "hour", from, to }];
  const dayFrom = Math.ceil(from / DAY_MS) * DAY_MS;
  const dayTo = Math.floor(to / DAY_MS) * DAY_MS;
  if (dayFrom >= dayTo) return [{ resolution: "hour", from, to }];
  // Each ragged end: its own hours, or its whole day minus the hours outside the range.
  const headAsDay = (dayFrom - from) / HOUR_MS > EDGE_HOURS_MAX;
  const tailAsDay = (to - dayTo) / HOUR_MS > EDGE_HOURS_MAX;
  const reads: RollupRead[] = [];
  if (from < dayFrom && !headAsDay) reads.push({ resolution: "hour", from, to: dayFrom });
  reads.push({
    resolution: "day",
    from: headAsDay ? dayFrom - DAY_MS : dayFrom,
    to: tailAsDay ? dayTo + DAY_MS : dayTo,
  });
  if (dayTo < to && !tailAsDay) reads.push({ resolution: "hour", from: dayTo, to });
  if (headAsDay) reads.push({ resolution: "hour", from: dayFrom - DAY_MS, to: from, subtract: true });
  if (tailAsDay) reads.push({ resolution: "hour", from: to, to: dayTo + DAY_MS, subtract: true });
  return reads;
}

/** Periods per chunk of a streamed report: bounds what one chunk holds in memory. */
const CHUNK_PERIODS: Record<Granularity, number> = { hour: 24 * 7, day: 92, week: 13, month: 6 };

/**
 * Splits [from, to) into chunks that end on period boundaries, so that each period is merged within
 * one chunk; a report without granularity is one chunk.
 */
export function chunkRange(from: number, to: number, granularity: Granularity | null): [number, number][] {
  if (granularity === null || from >= to) return from < to ? [[from, to]] : [];
  const chunks: [number, number][] = [];
  let start = from;
  let period = windowStartUtc(granularity, from);
  while (start < to) {
    for (let i = 0; i < CHUNK_PERIODS[granularity] && period < to; i++)
      period = nextWindowStartUtc(granularity, period);
    const end = Math.min(period, to);
    chunks.push([start, end]);
    start = end;
  }
  return chunks;
}

export interface MergeOptions {
  /** Report period, or null: one period spanning from–to. */
  granularity: Granularity | null;
  from: number;
  to: number;
  /** `customer` or dimension names. */
  groupBy: string[];
  /** Dimension equality filters (every entry must match). */
  filter: Record<string, string>;
}

/**
 * Merges rollup totals (of any resolution) into report rows: bucket → period, dimensions → group.
 * Parses each distinct dimensions string once.
 */
export class UsageMerger {
  private readonly cells = new Map<string, UsageRow>();
  private readonly parsed = new Map<string, Record<string, string> | null>();
  private readonly filterKeys: string[];

  constructor(private readonly o: MergeOptions) {
    this.filterKeys = Object.keys(o.filter);
  }

  /** The dimensions of a rollup string, or null when the filter excludes them. */
  private dims(json: string): Record<string, string> | null {
    let d = this.parsed.get(json);
    if (d === undefined) {
      const obj = JSON.parse(json) as Record<string, string>;
      d = this.filterKeys.every((k) => obj[k] === this.o.filter[k]) ? obj : null;
      this.parsed.set(json, d);
    }
    return d;
  }

  /** Adds a rollup row; with `subtract`, takes it away (see RollupRead). */
  add(r: RollupTotals, subtract = false): void {
    const dims = this.dims(r.dimensions);
    if (dims === null) return;
    const g = this.o.granularity;
    // A subtracted hour lies outside the range: it belongs to the period of the day it is taken from.
    const at =
      subtract && r.bucket < this.o.from
        ? this.o.from
        : subtract && r.bucket >= this.o.to
          ? this.o.to - 1
          : r.bucket;
    const periodStart = g === null ? this.o.from : windowStartUtc(g, at);
    const group = this.o.groupBy.map((name) => (name === "customer" ? r.customer : (dims[name] ?? null)));
    const key = `${periodStart}\u0000${JSON.stringify(group)}`;
    let cell = this.cells.get(key);
    if (!cell) {
      const periodEnd = g === null ? this.o.to : nextWindowStartUtc(g, periodStart);
      cell = { periodStart, periodEnd, group, totals: zeroTotals() };
      this.cells.set(key, cell);
    }
    const t = cell.totals;
    if (subtract) {
      t.tokensIn -= r.tokensIn;
      t.tokensOut -= r.tokensOut;
      t.steps -= r.steps;
      t.requests -= r.events;
      t.cost -= r.cost;
      return;
    }
    t.tokensIn += r.tokensIn;
    t.tokensOut += r.tokensOut;
    t.steps += r.steps;
    t.requests += r.events;
    t.cost += r.cost;
  }

  /** The rows so far, in period then group order (a missing dimension first), and forgets them. */
  take(): UsageRow[] {
    // A group whose events were all in subtracted hours is left with nothing: not a row.
    const rows = [...this.cells.values()]
      .filter((r) => r.totals.requests !== 0n)
      .sort((a, b) => a.periodStart - b.periodStart || compareGroups(a.group, b.group));
    this.cells.clear();
    return rows;
  }
}

export function compareGroups(a: (string | null)[], b: (string | null)[]): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? null;
    const y = b[i] ?? null;
    if (x === y) continue;
    if (x === null) return -1;
    if (y === null) return 1;
    return x < y ? -1 : 1;
  }
  return 0;
}

/** Every period of `granularity` that overlaps [from, to), by start. */
export function periodStarts(granularity: Granularity, from: number, to: number): number[] {
  const out: number[] = [];
  for (let p = windowStartUtc(granularity, from); p < to; p = nextWindowStartUtc(granularity, p)) out.push(p);
  return out;
}
