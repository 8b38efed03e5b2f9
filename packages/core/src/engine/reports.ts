import type { Clock } from "../clock.js";
import { invalid } from "../errors.js";
import { bounds } from "../limits.js";
import { DAY_MS, HOUR_MS, nextWindowStartUtc, windowStartUtc } from "../period/calendar.js";
import type { Store } from "../ports/store.js";
import { linearTrend, percentChange, percentShare } from "../reports/trend.js";
import {
  addTotals,
  chunkRange,
  type Granularity,
  planReads,
  REPORT_COLUMNS,
  UsageMerger,
  type UsageRow,
  type UsageTotals,
  zeroTotals,
} from "../reports/usage.js";
import { parseInstant } from "../time.js";
import { listAll } from "./book.js";
import { decodeCursor, encodeCursor, type Plan } from "./engine.js";

/** GET /v1/usage and /v1/usage/summary query parameters (strings, as the URL has them). */
export interface UsageQueryInput {
  from?: string;
  to?: string;
  granularity?: Granularity;
  group_by?: string;
  customer?: string;
  type?: string;
  model?: string;
  workflow?: string;
  key?: string;
  feature?: string;
  /** More dimension filters: `name:value,name:value`. */
  filter?: string;
}

export interface UsageReport {
  from: number;
  to: number;
  granularity: Granularity | null;
  groupBy: string[];
  /** The rows, period by period: read from the store chunk by chunk, never all at once. */
  rows: AsyncIterable<UsageRow>;
}

export type SummaryView = "daily" | "weekly" | "monthly" | "models" | "workflows";

export interface WorkflowRunsInput {
  from?: string;
  to?: string;
  customer?: string;
  cursor?: string;
  limit?: number;
}

/** How often the runtime's sweeper applies retention. */
export const RETENTION_INTERVAL_MS = HOUR_MS;
/** Default and longest report range. */
const DEFAULT_RANGE_MS = 30 * DAY_MS;
/** Dimension names a report cannot group or filter by (rollups do not keep them). */
const NOT_ROLLED_UP = new Set(["run"]);

/**
 * Reports over the rollups (issue #5): usage by period and group, dashboard views, workflow runs, and
 * the retention that purges raw events while the rollups keep the usage. See docs/reports.md.
 */
export class Reports {
  /** The first scheduled run is an hour after start (a server that just started has nothing urgent). */
  private lastRetention: number;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {
    this.lastRetention = clock.now();
  }

  // ---- GET /v1/usage ----------------------------------------------------------------------------

  /** Validates the query (throwing before anything streams) and returns the report's rows lazily. */
  usage(workspaceId: string, q: UsageQueryInput): UsageReport {
    const { from, to } = this.range(q, DEFAULT_RANGE_MS);
    const groupBy = parseGroupBy(q.group_by);
    const filter = parseFilter(q);
    const granularity = q.granularity ?? null;
    const types = q.type === undefined ? undefined : [q.type];
    const store = this.store;
    const byCustomer = groupBy.includes("customer");
    async function* rows(): AsyncGenerator<UsageRow> {
      for (const [start, end] of chunkRange(from, to, granularity)) {
        const merger = new UsageMerger({ granularity, from, to, groupBy, filter });
        for (const read of planReads(start, end, granularity)) {
          const totals = await store.queryRollups(workspaceId, {
            resolution: read.resolution,
            from: read.from,
            to: read.to,
            customer: q.customer,
            types,
            byCustomer,
            byBucket: granularity !== null,
          });
          for (const t of totals) merger.add(t, read.subtract === true);
        }
        yield* merger.take();
      }
    }
    return { from, to, granularity, groupBy, rows: rows() };
  }

  /** The whole report in memory: for the summary views, whose ranges are small. */
  private async collect(workspaceId: string, q: UsageQueryInput): Promise<UsageRow[]> {
    const out: UsageRow[] = [];
    for await (const row of this.usage(workspaceId, q).rows) out.push(row);
    return out;
  }

  // ---- GET /v1/usage/summary --------------------------------------------------------------------

  async summary(workspaceId: string, view: SummaryView, q: UsageQueryInput) {
    const now = this.clock.now();
    const end = Math.ceil((now + 1) / HOUR_MS) * HOUR_MS; // the current hour included
    const base: UsageQueryInput = { ...q, group_by: undefined, granularity: undefined };
    const iso = (ms: number) => new Date(ms).toISOString().replace(".000Z", "Z");
    switch (view) {
      case "daily":
      case "weekly":
      case "monthly": {
        const unit: Granularity = view === "daily" ? "day" : view === "weekly" ? "week" : "month";
        const count = view === "daily" ? 30 : 12;
        // One period more than shown, so that the first shown has a previous one to compare with.
        let start = windowStartUtc(unit, now);
        for (let i = 0; i < count; i++) start = previousStart(unit, start);
        const rows = await this.collect(workspaceId, {
          ...base,
          from: iso(start),
          to: iso(end),
          granularity: unit,
        });
        const byStart = new Map(rows.map((r) => [r.periodStart, r.totals]));
        const series: { start: number; end: number; totals: UsageTotals }[] = [];
        for (let p = start; p < end; p = nextWindowStartUtc(unit, p))
          series.push({ start: p, end: nextWindowStartUtc(unit, p), totals: byStart.get(p) ?? zeroTotals() });
        const shown = series.slice(1);
        const data = shown.map((s, i) => ({
          period_start: s.start,
          period_end: s.end,
          totals: s.totals,
          change: view === "daily" ? undefined : changeOf(series[i]!.totals, s.totals),
        }));
        const trend =
          view === "monthly"
            ? {
                tokens_total: linearTrend(shown.map((s) => s.totals.tokensIn + s.totals.tokensOut)),
                cost: linearTrend(shown.map((s) => s.totals.cost)),
              }
            : undefined;
        return { view, from: series[1]!.start, to: end, data, trend };
      }
      case "models":
      case "workflows": {
        const dimension = view === "models" ? "model" : "workflow";
        // models: the given range (default the last 30 days); workflows: always the rolling 30 days
        // that end with the current hour.
        const from = view === "workflows" || q.from === undefined ? iso(end - DEFAULT_RANGE_MS) : q.from;
        const to = view === "workflows" || q.to === undefined ? iso(end) : q.to;
        const rows = await this.collect(workspaceId, { ...base, from, to, group_by: dimension });
        const all = zeroTotals();
        for (const r of rows) addTotals(all, r.totals);
        const data = rows
          .map((r) => ({
            [dimension]: r.group[0] ?? null,
            totals: r.totals,
            share:
              view === "models"
                ? {
                    tokens_total_pct: percentShare(
                      r.totals.tokensIn + r.totals.tokensOut,
                      all.tokensIn + all.tokensOut,
                    ),
                    cost_pct: percentShare(r.totals.cost, all.cost),
                  }
                : undefined,
          }))
          .sort((a, b) =>
            a.totals.cost !== b.totals.cost
              ? a.totals.cost > b.totals.cost
                ? -1
                : 1
              : Number(b.totals.tokensIn + b.totals.tokensOut - (a.totals.tokensIn + a.totals.tokensOut)),
          );
        return {
          view,
          from: parseInstant(from, "query.from"),
          to: parseInstant(to, "query.to"),
          data,
          total: all,
        };
      }
    }
  }

  // ---- GET /v1/workflows/{id}/runs --------------------------------------------------------------

  async workflowRuns(workspaceId: string, workflow: string, q: WorkflowRunsInput) {
    const from = q.from === undefined ? undefined : parseInstant(q.from, "query.from");
    const to = q.to === undefined ? undefined : parseInstant(q.to, "query.to");
    if (from !== undefined && to !== undefined && from >= to)
      throw invalid("from must be before to", { field: "query.from" });
    const limit = q.limit ?? bounds.pageSizeDefault;
    let after: { startedAt: number; run: string } | undefined;
    if (q.cursor !== undefined) {
      const parsed = safeJson(decodeCursor(q.cursor));
      if (!Array.isArray(parsed) || typeof parsed[0] !== "number" || typeof parsed[1] !== "string")
        throw invalid("cursor is not valid", { field: "cursor" });
      after = { startedAt: parsed[0], run: parsed[1] };
    }
    const runs = await this.store.listWorkflowRuns(workspaceId, {
      workflow,
      from,
      to,
      customer: q.customer,
      after,
      limit: limit + 1,
    });
    const data = runs.slice(0, limit);
    const last = data[data.length - 1];
    return {
      data,
      nextCursor:
        runs.length > limit && last ? encodeCursor(JSON.stringify([last.startedAt, last.run])) : undefined,
    };
  }

  // ---- retention --------------------------------------------------------------------------------

  /**
   * Deletes the raw events of every customer on a plan with `retention_days` that are older than
   * that (cut at a whole hour), in every workspace. Rollups, and so reports and quota usage, stay.
   */
  async applyRetention(): Promise<{ customers: number; events: number }> {
    const now = this.clock.now();
    this.lastRetention = now;
    let customers = 0;
    let events = 0;
    for (const ws of await this.store.listWorkspaces()) {
      const retention = new Map<string, number>();
      for (const p of await listAll<Omit<Plan, "id">>(this.store, ws.id, "plan"))
        if (p.body.retentionDays != null) retention.set(p.id, p.body.retentionDays);
      if (retention.size === 0) continue;
      for (const c of await listAll<{ plan: string | null }>(this.store, ws.id, "customer")) {
        const days = c.body.plan === null ? undefined : retention.get(c.body.plan);
        if (days === undefined) continue;
        const before = Math.floor((now - days * DAY_MS) / HOUR_MS) * HOUR_MS;
        events += await this.store.purgeEvents(ws.id, c.id, before);
        customers++;
      }
    }
    return { customers, events };
  }

  /** For a periodic sweeper: applies retention when RETENTION_INTERVAL_MS has passed since the last time. */
  async retentionDue(): Promise<{ customers: number; events: number } | null> {
    if (this.clock.now() - this.lastRetention < RETENTION_INTERVAL_MS) return null;
    return this.applyRetention();
  }

  // ---- helpers ----------------------------------------------------------------------------------

  private range(q: { from?: string; to?: string }, defaultMs: number): { from: number; to: number } {
    const to =
      q.to === undefined
        ? Math.ceil((this.clock.now() + 1) / HOUR_MS) * HOUR_MS
        : parseInstant(q.to, "query.to");
    const from = q.from === undefined ? to - defaultMs : parseInstant(q.from, "query.from");
    if (from % HOUR_MS !== 0)
      throw invalid("from must be a whole hour (reports read hourly rollups)", { field: "query.from" });
    if (to % HOUR_MS !== 0)
      throw invalid("to must be a whole hour (reports read hourly rollups)", { field: "query.to" });
    if (from >= to) throw invalid("from must be before to", { field: "query.from" });
    return { from, to };
  }
}

function previousStart(unit: Granularity, start: number): number {
  if (unit !== "month") return start - (unit === "day" ? DAY_MS : unit === "week" ? 7 * DAY_MS : HOUR_MS);
  return windowStartUtc("month", start - 1);
}

function changeOf(prev: UsageTotals, cur: UsageTotals) {
  return {
    tokens_total_pct: percentChange(prev.tokensIn + prev.tokensOut, cur.tokensIn + cur.tokensOut),
    requests_pct: percentChange(prev.requests, cur.requests),
    cost_pct: percentChange(prev.cost, cur.cost),
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function parseGroupBy(text: string | undefined): string[] {
  if (text === undefined || text === "") return [];
  const names = text.split(",").map((s) => s.trim());
  if (names.length > bounds.groupByMax || names.some((g) => g === "")) {
    throw invalid(`group_by takes 1 to ${bounds.groupByMax} dimension names`, { field: "group_by" });
  }
  for (const name of names) {
    if ((REPORT_COLUMNS as readonly string[]).includes(name))
      throw invalid(`group_by cannot name the column ${name}`, { field: "group_by" });
    if (NOT_ROLLED_UP.has(name))
      throw invalid(`reports do not group by ${name}; see GET /v1/workflows/{id}/runs`, {
        field: "group_by",
      });
  }
  if (new Set(names).size !== names.length)
    throw invalid("group_by names a dimension twice", { field: "group_by" });
  return names;
}

function parseFilter(q: UsageQueryInput): Record<string, string> {
  const filter: Record<string, string> = {};
  for (const name of ["model", "workflow", "key", "feature"] as const) {
    const v = q[name];
    if (v !== undefined) filter[name] = v;
  }
  if (q.filter !== undefined && q.filter !== "") {
    for (const part of q.filter.split(",")) {
      const i = part.indexOf(":");
      if (i <= 0) throw invalid("filter takes name:value pairs, comma-separated", { field: "filter" });
      const name = part.slice(0, i);
      if (NOT_ROLLED_UP.has(name)) throw invalid(`reports do not filter by ${name}`, { field: "filter" });
      filter[name] = part.slice(i + 1);
    }
  }
  return filter;
}
