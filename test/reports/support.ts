import { formatInstant, parseCsv } from "@tollgate/core";
import { expect } from "vitest";
import { readTrace } from "../support/azure.js";
import type { TestServer } from "../support/server.js";

/**
 * The Azure LLM trace 2023 as usage events, derived deterministically:
 * - conv.csv is workflow "chat" on model "gpt-4o"; code.csv is workflow "code" on model "gpt-4o-mini";
 * - the customer is the row's index modulo 3 (acme, bob, carol); feature "a"/"b" by index parity;
 * - ten consecutive rows of a file form one run (`run` dimension "<file>_<index / 10>");
 * - every event is one step (`values.steps` 1) and carries its own cost: $2.50 per 1M input tokens
 *   and $10 per 1M output tokens, i.e. 2,500,000 and 10,000,000 pico-USD per token;
 * - `stretch` replays the hour of the trace stretched 1000 times (41.7 days from `base`), so that
 *   days, weeks and months each hold many buckets; ids and customers get a prefix.
 */
export interface TraceEvent {
  id: string;
  type: string;
  customer: string;
  timestamp: number;
  tokensIn: number;
  tokensOut: number;
  cost: bigint;
  model: string;
  workflow: string;
  feature: string;
  run: string;
}

const T0 = Date.UTC(2023, 10, 16, 18, 0, 0);

export function traceEvents(options: { stretch?: { base: number; factor: number; prefix: string } } = {}) {
  const out: TraceEvent[] = [];
  for (const [file, workflow, model] of [
    ["conv", "chat", "gpt-4o"],
    ["code", "code", "gpt-4o-mini"],
  ] as const) {
    readTrace(file).forEach((row, i) => {
      const s = options.stretch;
      const customers = ["acme", "bob", "carol"];
      out.push({
        id: `${s?.prefix ?? ""}${file}_${i}`,
        type: "llm.completion",
        customer: `${s?.prefix ?? ""}${customers[i % 3]}`,
        timestamp: s ? s.base + (row.timestamp - T0) * s.factor : row.timestamp,
        tokensIn: row.contextTokens,
        tokensOut: row.generatedTokens,
        cost: BigInt(row.contextTokens) * 2_500_000n + BigInt(row.generatedTokens) * 10_000_000n,
        model,
        workflow,
        feature: i % 2 === 0 ? "a" : "b",
        run: `${s?.prefix ?? ""}${file}_${Math.floor(i / 10)}`,
      });
    });
  }
  return out;
}

/** pico-USD → the decimal USD string the API prints (at least 6 decimals). */
export function usd(pico: bigint): string {
  const digits = pico.toString().padStart(13, "0");
  let frac = digits.slice(-12).replace(/0+$/, "");
  if (frac.length < 6) frac = frac.padEnd(6, "0");
  return `${digits.slice(0, -12)}.${frac}`;
}

export async function replay(t: TestServer, events: TraceEvent[]): Promise<void> {
  for (let i = 0; i < events.length; i += 1000) {
    const batch = events.slice(i, i + 1000).map((e) => ({
      id: e.id,
      type: e.type,
      customer: e.customer,
      timestamp: new Date(e.timestamp).toISOString(),
      values: { tokens_in: e.tokensIn, tokens_out: e.tokensOut, steps: 1, cost: usd(e.cost) },
      dimensions: { model: e.model, workflow: e.workflow, feature: e.feature, run: e.run },
    }));
    const res = await t.api("POST", "/v1/events", { events: batch });
    expect(res.status, res.text).toBe(202);
  }
}

// ---- independent bucketing (Date's own calendar, not core's period module) ---------------------

export function periodOf(granularity: string | null, t: number, from: number): number {
  const d = new Date(t);
  switch (granularity) {
    case null:
      return from;
    case "hour":
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours());
    case "day":
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
    case "week": {
      const back = (d.getUTCDay() + 6) % 7; // days since Monday
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - back);
    }
    case "month":
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
    default:
      throw new Error(granularity);
  }
}

export interface ExpectedRow {
  period_start: string;
  group: Record<string, string>;
  tokens_in: number;
  tokens_out: number;
  tokens_total: number;
  steps: number;
  requests: number;
  cost: string;
}

/** Totals per period and group, computed from the events in the test. */
export function expectedRows(
  events: TraceEvent[],
  o: {
    granularity: string | null;
    groupBy: string[];
    from: number;
    to: number;
    filter?: (e: TraceEvent) => boolean;
  },
): Map<string, ExpectedRow> {
  const cells = new Map<
    string,
    { period: number; group: Record<string, string>; tin: number; tout: number; n: number; cost: bigint }
  >();
  for (const e of events) {
    if (e.timestamp < o.from || e.timestamp >= o.to) continue;
    if (o.filter && !o.filter(e)) continue;
    const period = periodOf(o.granularity, e.timestamp, o.from);
    const group: Record<string, string> = {};
    for (const g of o.groupBy) group[g] = (e as unknown as Record<string, string>)[g]!;
    const key = `${period}|${JSON.stringify(group)}`;
    let c = cells.get(key);
    if (!c) {
      c = { period, group, tin: 0, tout: 0, n: 0, cost: 0n };
      cells.set(key, c);
    }
    c.tin += e.tokensIn;
    c.tout += e.tokensOut;
    c.n++;
    c.cost += e.cost;
  }
  const out = new Map<string, ExpectedRow>();
  for (const [key, c] of cells) {
    out.set(rowKey(formatInstant(c.period), c.group), {
      period_start: formatInstant(c.period),
      group: c.group,
      tokens_in: c.tin,
      tokens_out: c.tout,
      tokens_total: c.tin + c.tout,
      steps: c.n,
      requests: c.n,
      cost: usd(c.cost),
    });
    void key;
  }
  return out;
}

export const rowKey = (periodStart: string, group: Record<string, string | null>) =>
  `${periodStart}|${JSON.stringify(group)}`;

/** API rows (JSON) keyed like expectedRows. */
// biome-ignore lint/suspicious/noExplicitAny: rows are checked field by field
export function actualRows(rows: any[], groupBy: string[]): Map<string, ExpectedRow> {
  const out = new Map<string, ExpectedRow>();
  for (const r of rows) {
    const group: Record<string, string> = {};
    for (const g of groupBy) group[g] = r[g];
    const key = rowKey(r.period_start, group);
    expect(out.has(key), `duplicate row ${key}`).toBe(false);
    out.set(key, {
      period_start: r.period_start,
      group,
      tokens_in: r.tokens_in,
      tokens_out: r.tokens_out,
      tokens_total: r.tokens_total,
      steps: r.steps,
      requests: r.requests,
      cost: r.cost,
    });
  }
  return out;
}

/** CSV rows (header first) → the same shape as actualRows. */
export function csvRows(text: string, groupBy: string[]): Map<string, ExpectedRow> {
  const [header, ...lines] = parseCsv(text);
  expect(header).toEqual([
    "period_start",
    ...groupBy,
    "tokens_in",
    "tokens_out",
    "tokens_total",
    "steps",
    "requests",
    "cost",
  ]);
  const objects = lines.map((cells) => {
    const o: Record<string, unknown> = {};
    header!.forEach((h, i) => {
      const v = cells[i]!;
      o[h] = ["tokens_in", "tokens_out", "tokens_total", "steps", "requests"].includes(h) ? Number(v) : v;
    });
    return o;
  });
  return actualRows(objects, groupBy);
}
