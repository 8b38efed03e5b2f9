/**
 * bench/report: a 30-day usage report by model over >= 10 million events, answered from the rollups
 * (Reports.usage, what GET /v1/usage?group_by=model runs), beside the equivalent GROUP BY over the raw
 * events in the same SQLite file, in the same run. Both answers are compared: they must be equal.
 *
 *   npm run bench:report -- [--events 10000000] [--data /tmp/tollgate-report-bench] [--runs 5]
 *
 * Events are written through the store's bulk path (SqliteStore.appendEvents: the writer thread's
 * group commit, which maintains the rollups in the same transaction), not over HTTP. With --data the
 * file is kept, and a later run with the same --data and --events reuses it.
 *
 * The workload: 30 days of events ending at NOW, evenly spread; token counts cycle through the Azure
 * LLM trace 2023 (conv + code); 200 customers, each with 3 workflows of its own (out of 20; a workflow
 * runs on one or two of 6 models and belongs to one of 4 features) and 2 API keys; 8 events per run (1.25 million runs).
 * The rollups hold one row per hour (and per day) for each combination of dimensions seen in it:
 * this shape (dimensions that belong to a customer's setup) keeps that number far below the number of
 * events. See docs/reports.md for how the ratio changes with other shapes.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { canonicalFlat, type EventToStore, formatInstant, Reports } from "@tollgate/core";
import { SqliteStore } from "@tollgate/store-sqlite";
import { readTrace } from "../test/support/azure.js";
import { fmt } from "./support.js";

const { values: args } = parseArgs({
  options: {
    events: { type: "string", default: "10000000" },
    data: { type: "string" },
    runs: { type: "string", default: "5" },
  },
});
const total = Number(args.events);
const runs = Number(args.runs);

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = Date.UTC(2026, 10, 23, 0, 0, 0);
const FROM = NOW - 30 * DAY;
const WS = "default";

const trace = [...readTrace("conv"), ...readTrace("code")];
const MODELS = [
  "gpt-4o",
  "gpt-4o-mini",
  "claude-3.5-sonnet",
  "claude-3-haiku",
  "gemini-1.5-pro",
  "gemini-1.5-flash",
];
// Per model: pico-USD per input and output token.
const PRICE: Record<string, [number, number]> = {
  "gpt-4o": [2_500_000, 10_000_000],
  "gpt-4o-mini": [150_000, 600_000],
  "claude-3.5-sonnet": [3_000_000, 15_000_000],
  "claude-3-haiku": [250_000, 1_250_000],
  "gemini-1.5-pro": [1_250_000, 5_000_000],
  "gemini-1.5-flash": [75_000, 300_000],
};
const FEATURES = ["chat", "search", "agent", "summarize"];

function makeEvent(i: number): EventToStore {
  const row = trace[i % trace.length]!;
  const c = i % 200;
  const workflow = (c * 7 + (i % 3)) % 20; // 3 workflows of the customer's own
  const model = MODELS[(workflow + (i % 2 === 0 ? 0 : (workflow % 2) * 3)) % MODELS.length]!; // 1 or 2 models
  const [pin, pout] = PRICE[model]!;
  const values = {
    tokens_in: row.contextTokens,
    tokens_out: row.generatedTokens,
    steps: 1,
    cost: row.contextTokens * pin + row.generatedTokens * pout,
  };
  const dimensions = {
    model,
    workflow: `wf_${workflow}`,
    feature: FEATURES[workflow % 4]!,
    key: `key_${c}_${i % 2}`,
    // 8 events per run: every 600th event has the same customer and workflow.
    run: `run_${c}_${workflow}_${Math.floor(i / 4800)}`,
  };
  const valuesJson = canonicalFlat(values);
  const dimensionsJson = canonicalFlat(dimensions);
  const event = {
    id: `evt_${i}`,
    type: "llm.completion",
    customer: `cust_${c}`,
    timestamp: FROM + Math.floor((i / total) * 30 * DAY),
    values,
    dimensions,
  };
  return {
    event,
    fingerprint: `${event.id}\u0000${valuesJson}\u0000${dimensionsJson}`,
    valuesJson,
    dimensionsJson,
  };
}

const dir = args.data ?? mkdtempSync(join(tmpdir(), "tollgate-report-bench-"));
mkdirSync(dir, { recursive: true });
const path = join(dir, "tollgate.db");
const reuse = existsSync(path);
const store = new SqliteStore({ path, synchronous: "normal" });
await store.ensureWorkspace(WS, NOW);

const stored = store.db.prepare("SELECT count(*) FROM events").pluck().get() as number;
console.log(`bench/report: ${fmt(total)} events over 30 days, 200 customers, 6 models (${path})`);
if (reuse && stored === total) {
  console.log(`  reusing the ${fmt(stored)} events already in ${path}`);
} else {
  if (stored !== 0) throw new Error(`${path} holds ${stored} events, not ${total}: use another --data`);
  const started = performance.now();
  const BATCH = 5_000;
  const IN_FLIGHT = 8;
  const pending = new Set<Promise<unknown>>();
  for (let i = 0; i < total; i += BATCH) {
    const batch: EventToStore[] = [];
    for (let j = i; j < Math.min(i + BATCH, total); j++) batch.push(makeEvent(j));
    const p = store.appendEvents(WS, batch).then((r) => {
      if (!r.ok) throw new Error("conflict");
      pending.delete(p);
    });
    pending.add(p);
    if (pending.size >= IN_FLIGHT) await Promise.race(pending);
    if ((i / BATCH) % 200 === 0 && i > 0) {
      const s = (performance.now() - started) / 1000;
      process.stdout.write(`  generated ${fmt(i)} events, ${fmt(Math.round(i / s))} events/s\r`);
    }
  }
  await Promise.all(pending);
  const s = (performance.now() - started) / 1000;
  console.log(
    `  generated ${fmt(total)} events in ${s.toFixed(0)} s (${fmt(Math.round(total / s))} events/s, bulk path, synchronous=normal)`,
  );
}
const rollupRows = {
  hour: store.db.prepare("SELECT count(*) FROM rollup_hour").pluck().get() as number,
  day: store.db.prepare("SELECT count(*) FROM rollup_day").pluck().get() as number,
};
console.log(`  rollups: ${fmt(rollupRows.hour)} hour rows, ${fmt(rollupRows.day)} day rows`);

const reports = new Reports(store, { now: () => NOW });
// The last 30 days up to the current hour, as the models view asks: whole days in the middle,
// hours at both ends.
const from = NOW - 30 * DAY + 5 * HOUR;
const to = NOW + 5 * HOUR;

type Answer = Map<
  string,
  { requests: bigint; tokensIn: bigint; tokensOut: bigint; steps: bigint; cost: bigint }
>;

async function viaRollups(): Promise<Answer> {
  const out: Answer = new Map();
  const report = reports.usage(WS, { from: formatInstant(from), to: formatInstant(to), group_by: "model" });
  for await (const r of report.rows) out.set(String(r.group[0]), r.totals);
  return out;
}

const raw = store.db
  .prepare(
    `SELECT json_extract(dims, '$.model') AS model, count(*), sum(json_extract(vals, '$.tokens_in')),
            sum(json_extract(vals, '$.tokens_out')), sum(json_extract(vals, '$.steps')), sum(json_extract(vals, '$.cost'))
     FROM events WHERE ws = (SELECT seq FROM workspaces WHERE id = ?) AND ts >= ? AND ts < ? GROUP BY model`,
  )
  .raw(true)
  .safeIntegers(true);
function viaRawScan(): Answer {
  const out: Answer = new Map();
  for (const r of raw.all(WS, from, to) as bigint[][]) {
    out.set(String(r[0]), { requests: r[1]!, tokensIn: r[2]!, tokensOut: r[3]!, steps: r[4]!, cost: r[5]! });
  }
  return out;
}

async function time<T>(fn: () => T | Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rollupTimes: number[] = [];
const rawTimes: number[] = [];
let rollupAnswer: Answer | undefined;
let rawAnswer: Answer | undefined;
await viaRollups(); // warm-up (statement preparation)
for (let i = 0; i < runs; i++) {
  const a = await time(viaRollups);
  rollupTimes.push(a.ms);
  rollupAnswer = a.value;
}
for (let i = 0; i < Math.min(runs, 2); i++) {
  const b = await time(viaRawScan);
  rawTimes.push(b.ms);
  rawAnswer = b.value;
}
const canonical = (a: Answer) =>
  JSON.stringify(
    [...a]
      .sort(([x], [y]) => (x < y ? -1 : 1))
      .map(([m, t]) => [m, t.requests, t.tokensIn, t.tokensOut, t.steps, t.cost].map(String)),
  );
const same = canonical(rollupAnswer!) === canonical(rawAnswer!);
if (!same) console.log(`  rollups: ${canonical(rollupAnswer!)}\n  raw:     ${canonical(rawAnswer!)}`);
const events = [...rawAnswer!.values()].reduce((s, r) => s + r.requests, 0n);

const r = median(rollupTimes);
const b = median(rawTimes);
console.log(
  `  report: 30 days by model, ${formatInstant(from)} to ${formatInstant(to)}, ${fmt(Number(events))} events in range, ${rawAnswer!.size} models`,
);
console.log(
  `  baseline  GROUP BY over raw events (json_extract)  ${b.toFixed(0).padStart(8)} ms  (median of ${rawTimes.length})`,
);
console.log(
  `  tollgate  Reports.usage from rollups              ${r.toFixed(1).padStart(8)} ms  (median of ${rollupTimes.length}; ${(b / r).toFixed(0)}x faster)`,
);
console.log(`  answers equal: ${same ? "yes" : "NO"}`);
console.log("  targets: >= 20x faster than the raw scan, < 100 ms");
await store.close();
if (!args.data) rmSync(dir, { recursive: true, force: true });
if (!same) process.exit(1);
