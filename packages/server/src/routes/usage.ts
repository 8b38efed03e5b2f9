import { Readable } from "node:stream";
import {
  csvLine,
  formatInstant,
  formatPicoUsd,
  monthlyOverage,
  type Reports,
  type UsageReport,
  type UsageRow,
  type UsageTotals,
} from "@tollgate/core";
import type { FastifyInstance } from "fastify";
import { UsageQuery, UsageSummaryQuery } from "../schemas.js";
import { type RouteDeps, typed } from "./common.js";

/** A count as the API prints it: a JSON number up to 2^53-1, a decimal string past it. */
export const count = (n: bigint): number | string =>
  n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString();

/** The totals columns of every report row, in their order. */
export function presentTotals(t: UsageTotals) {
  return {
    tokens_in: count(t.tokensIn),
    tokens_out: count(t.tokensOut),
    tokens_total: count(t.tokensIn + t.tokensOut),
    steps: count(t.steps),
    requests: count(t.requests),
    cost: formatPicoUsd(t.cost),
  };
}

function presentRow(report: UsageReport, r: UsageRow) {
  const row: Record<string, unknown> = {
    period_start: formatInstant(r.periodStart),
    period_end: formatInstant(r.periodEnd),
  };
  report.groupBy.forEach((name, i) => {
    row[name] = r.group[i] ?? null;
  });
  return Object.assign(row, presentTotals(r.totals));
}

/** The report as CSV (RFC 4180, header row, CRLF), produced as it is read. */
export async function* csvChunks(report: UsageReport): AsyncGenerator<string> {
  const totals = ["tokens_in", "tokens_out", "tokens_total", "steps", "requests", "cost"];
  yield csvLine(["period_start", ...report.groupBy, ...totals]);
  let buffer = "";
  for await (const r of report.rows) {
    const t = presentTotals(r.totals);
    buffer += csvLine([
      formatInstant(r.periodStart),
      ...r.group,
      ...totals.map((k) => t[k as keyof typeof t]),
    ]);
    if (buffer.length >= 64 * 1024) {
      yield buffer;
      buffer = "";
    }
  }
  if (buffer) yield buffer;
}

export async function* jsonChunks(report: UsageReport): AsyncGenerator<string> {
  yield '{"data":[';
  let buffer = "";
  let first = true;
  for await (const r of report.rows) {
    buffer += (first ? "" : ",") + JSON.stringify(presentRow(report, r));
    first = false;
    if (buffer.length >= 64 * 1024) {
      yield buffer;
      buffer = "";
    }
  }
  yield `${buffer}]}`;
}

export function usageRoutes(reports: Reports) {
  return (app: FastifyInstance, deps: RouteDeps) => {
    const r = typed(app);
    r.get(
      "/v1/usage",
      { schema: { querystring: UsageQuery, tags: ["reports"] }, config: { role: "service" } },
      async (req, reply) => {
        // Validated here (a 400 before any byte is sent), then streamed chunk by chunk.
        const report = reports.usage(req.principal.workspaceId, req.query);
        if (req.query.format === "csv") {
          reply.type("text/csv; charset=utf-8");
          reply.header("content-disposition", 'attachment; filename="usage.csv"');
          return reply.send(Readable.from(csvChunks(report)));
        }
        reply.type("application/json; charset=utf-8");
        return reply.send(Readable.from(jsonChunks(report)));
      },
    );
    r.get(
      "/v1/usage/summary",
      { schema: { querystring: UsageSummaryQuery, tags: ["reports"] }, config: { role: "service" } },
      async (req) => {
        const { view, ...q } = req.query;
        const s = await reports.summary(req.principal.workspaceId, view, q);
        // The monthly report of one customer gains its overage per month (docs/plans.md).
        const overage =
          view === "monthly" && q.customer !== undefined
            ? await monthlyOverage(
                deps.engine,
                req.principal.workspaceId,
                q.customer,
                s.data.map((d) => {
                  const m = d as { period_start: number; period_end: number };
                  return { start: m.period_start, end: m.period_end };
                }),
              )
            : null;
        return {
          view: s.view,
          from: formatInstant(s.from),
          to: formatInstant(s.to),
          data: s.data.map((d, i) => {
            const { totals, ...rest } = d as typeof d & { totals: UsageTotals };
            const out: Record<string, unknown> = {};
            for (const [k, v] of Object.entries(rest)) {
              if (v === undefined) continue;
              out[k] = k === "period_start" || k === "period_end" ? formatInstant(v as number) : v;
            }
            Object.assign(out, presentTotals(totals));
            const o = overage?.[i];
            if (o) {
              Object.assign(out, {
                overage_period: o.period,
                overage: o.data,
                overage_charge: o.total_charge,
              });
            }
            return out;
          }),
          ...("total" in s && s.total ? { total: presentTotals(s.total) } : {}),
          ...("trend" in s && s.trend
            ? {
                trend: {
                  tokens_total: {
                    per_period: s.trend.tokens_total.slope,
                    direction: s.trend.tokens_total.direction,
                  },
                  cost: {
                    per_period: formatPicoUsd(BigInt(Math.round(s.trend.cost.slope))),
                    direction: s.trend.cost.direction,
                  },
                },
              }
            : {}),
        };
      },
    );
  };
}
