/**
 * bench/simulate: a what-if replay (issue #11) of >= 10 million stored events through a proposed plan
 * (per-customer tokens/minute fixed-window rate limit, monthly token quota, soft daily quota with
 * alerts, proposed prices, a debit rule), beside a bare scan of the same events (the same pages from
 * the same SQLite file, nothing done with them) in the same run.
 *
 *   npm run bench:simulate -- [--events 10000000] [--data /tmp/tollgate-simulate-bench] [--scan-runs 1]
 *     [--recording direct|store] [--read stream|page]
 *
 * Prints events/s of the replay and of the bare scan, their ratio, and the peak RSS of the process
 * during the replay (sampled after every page) and over its whole life (getrusage maxrss). Events are
 * generated in a child process (so that the generator's memory is not counted), through the store's
 * bulk path; with --data the file is kept and reused by a later run with the same --events.
 *
 * The workload: 30 days ending at NOW, evenly spread; token counts cycle through the Azure LLM trace
 * 2023 (conv + code); 200 customers; 6 models; every event carries the cost Tollgate priced it at
 * (values.cost with a price row), so the replay prices it again under the proposed prices.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { canonicalFlat, Simulation } from "@tollgate/core";
import { keyMinter, priceCatalogue } from "@tollgate/server";
import { MemoryStore } from "@tollgate/store-memory";
import { SqliteStore } from "@tollgate/store-sqlite";
import { isValidTimeZone } from "../packages/cli/src/timezone.js";
import { readTrace } from "../test/support/azure.js";
import { fmt } from "./support.js";

const { values: args } = parseArgs({
  options: {
    events: { type: "string", default: "10000000" },
    data: { type: "string" },
    "scan-runs": { type: "string", default: "1" },
    "generate-only": { type: "boolean", default: false },
    /** direct (default) or store: how the replay records admitted events (SimulationDeps.recording). */
    recording: { type: "string", default: "direct" },
    /** stream (default: the store's reader thread) or page: pageEvents on the main thread. */
    read: { type: "string", default: "stream" },
  },
});
const total = Number(args.events);
const DAY = 86_400_000;
const NOW = Date.UTC(2026, 10, 23, 0, 0, 0);
const FROM = NOW - 30 * DAY;
const WS = "default";
const MODELS = [
  "gpt-4o",
  "gpt-4o-mini",
  "claude-3.5-sonnet",
  "claude-3-haiku",
  "gemini-1.5-pro",
  "gemini-1.5-flash",
];
const PRICE: Record<string, [number, number]> = {
  "gpt-4o": [2_500_000, 10_000_000],
  "gpt-4o-mini": [150_000, 600_000],
  "claude-3.5-sonnet": [3_000_000, 15_000_000],
  "claude-3-haiku": [250_000, 1_250_000],
  "gemini-1.5-pro": [1_250_000, 5_000_000],
  "gemini-1.5-flash": [75_000, 300_000],
};

const dir = args.data ?? mkdtempSync(join(tmpdir(), "tollgate-simulate-bench-"));
mkdirSync(dir, { recursive: true });
const path = join(dir, "tollgate.db");

if (args["generate-only"]) {
  const trace = [...readTrace("conv"), ...readTrace("code")];
  const store = new SqliteStore({ path, synchronous: "normal" });
  await store.ensureWorkspace(WS, NOW);
  const stored = store.db.prepare("SELECT count(*) FROM events").pluck().get() as number;
  if (stored === total) {
    console.log(`  reusing the ${fmt(stored)} events already in ${path}`);
  } else {
    if (stored !== 0) throw new Error(`${path} holds ${stored} events, not ${total}: use another --data`);
    const started = performance.now();
    // Straight into the events table (the rows appendEvents writes, without rollups, which a
    // replay does not read), in transactions of 50,000: ten times faster than the bulk path.
    const wsSeq = store.db.prepare("SELECT seq FROM workspaces WHERE id = ?").pluck().get(WS) as number;
    const insert = store.db.prepare(
      "INSERT INTO events (ws, id, type, customer, ts, vals, dims, fp, price_row) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    const fp = Buffer.alloc(16);
    const chunk = store.db.transaction((from: number, to: number) => {
      for (let j = from; j < to; j++) {
        const row = trace[j % trace.length]!;
        const model = MODELS[j % MODELS.length]!;
        const [pin, pout] = PRICE[model]!;
        const values = {
          tokens_in: row.contextTokens,
          tokens_out: row.generatedTokens,
          tokens: row.contextTokens + row.generatedTokens,
          cost: row.contextTokens * pin + row.generatedTokens * pout,
        };
        insert.run(
          wsSeq,
          `evt_${j}`,
          "llm.completion",
          `cust_${j % 200}`,
          FROM + Math.floor((j / total) * 30 * DAY),
          canonicalFlat(values),
          canonicalFlat({ model }),
          fp,
          `bench:${model}`,
        );
      }
    });
    for (let i = 0; i < total; i += 50_000) {
      chunk(i, Math.min(i + 50_000, total));
      if (i % 1_000_000 === 0) process.stdout.write(`  generated ${fmt(i)} events\r`);
    }
    const s = (performance.now() - started) / 1000;
    console.log(`  generated ${fmt(total)} events in ${s.toFixed(0)} s`);
  }
  await store.close();
  process.exit(0);
}

console.log(
  `bench/simulate: ${fmt(total)} events over 30 days, 200 customers, 6 models (${path}); recording ${args.recording}, read ${args.read}`,
);
{
  // The child reuses the file when it already holds the events.
  const child = spawnSync(
    process.execPath,
    [
      ...process.execArgv,
      fileURLToPath(import.meta.url),
      "--generate-only",
      "--events",
      String(total),
      "--data",
      dir,
    ],
    { stdio: "inherit" },
  );
  if (child.status !== 0) throw new Error("generating the events failed");
}

const store = new SqliteStore({ path, synchronous: "normal" });
await store.ensureWorkspace(WS, NOW);

// The proposal: what an operator might try before changing the pro plan.
const config = {
  meters: {
    tokens: { event_type: "llm.completion", aggregation: "sum", value: ["tokens_in", "tokens_out"] },
    spend: { event_type: "llm.completion", aggregation: "sum", value: "cost" },
  },
  plans: {
    pro: {
      name: "Pro",
      limits: [
        { id: "monthly_tokens", meter: "tokens", amount: 60_000_000, period: "month" },
        { id: "daily_tokens", meter: "tokens", amount: 2_000_000, period: "day", enforcement: "soft" },
      ],
      rate_limits: [
        {
          id: "tpm",
          scope: "customer",
          value: "tokens",
          limit: 3_000,
          window_seconds: 60,
          algorithm: "fixed_window",
        },
      ],
    },
  },
  customers: Object.fromEntries(Array.from({ length: 200 }, (_, c) => [`cust_${c}`, { plan: "pro" }])),
  prices: {
    "gpt-4o": { input: "2", output: "8" },
    "gpt-4o-mini": { input: "0.1", output: "0.4" },
  },
};

const peak = { rss: 0 };
const sample = () => {
  const rss = process.memoryUsage.rss();
  if (rss > peak.rss) peak.rss = rss;
};

/** CPU seconds this process has used (user + system, every thread): rates per CPU second hold on a busy machine. */
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** CPU seconds of the main thread alone (Linux: /proc/self/task/<pid>/stat, in clock ticks of 10 ms). */
const mainCpu = () => {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
};

// Baseline: the same pages, read and dropped.
let scanRate = 0;
let scanCpuRate = 0;
for (let run = 0; run < Number(args["scan-runs"]); run++) {
  const t0 = performance.now();
  const c0 = cpu();
  let n = 0;
  let after: { timestamp: number; seq: number } | undefined;
  let asOfSeq: number | undefined;
  for (;;) {
    const page = await store.pageEvents(
      WS,
      { from: FROM, to: NOW, ...(after ? { after } : {}), ...(asOfSeq !== undefined ? { asOfSeq } : {}) },
      2_000,
    );
    asOfSeq = page.asOfSeq;
    if (page.events.length === 0) break;
    n += page.events.length;
    const last = page.events[page.events.length - 1]!;
    after = { timestamp: last.event.timestamp, seq: last.seq };
  }
  const rate = (n * 1000) / (performance.now() - t0);
  const cpuRate = n / (cpu() - c0);
  scanRate = Math.max(scanRate, rate);
  scanCpuRate = Math.max(scanCpuRate, cpuRate);
  console.log(
    `  bare scan: ${fmt(n)} events, ${fmt(rate)} events/s wall, ${fmt(cpuRate)} events per CPU second`,
  );
}

// The same events through streamEvents (read and decoded in the store's reader thread), dropped.
{
  const t0 = performance.now();
  const c0 = cpu();
  const m0 = mainCpu();
  let n = 0;
  for await (const page of store.streamEvents(WS, { from: FROM, to: NOW }, 2_000)) n += page.events.length;
  const s = (performance.now() - t0) / 1000;
  console.log(
    `  streamed scan: ${fmt(n)} events, ${fmt(n / s)} events/s wall, ${fmt(n / (cpu() - c0))} events per CPU second (all threads), ${fmt(n / (mainCpu() - m0))} per main-thread CPU second`,
  );
}

sample();
const rssBefore = peak.rss;
const sim = await Simulation.prepare(
  {
    // --read page: the store without streamEvents, so that the replay pages on the main thread.
    source:
      args.read === "page"
        ? Object.assign(Object.create(store) as SqliteStore, { streamEvents: undefined })
        : store,
    workspaceId: WS,
    recording: args.recording as "direct" | "store",
    createStore: (hooks) => new MemoryStore({ retainEvents: false, retainAlerts: false, ...hooks }),
    keys: keyMinter,
    isValidTimeZone,
    prices: priceCatalogue(),
    stopwatch: () => performance.now(),
  },
  { from: new Date(FROM).toISOString(), to: new Date(NOW).toISOString(), config },
);
let lastPrint = 0;
const simCpu0 = cpu();
const simMain0 = mainCpu();
const result = await sim.run((p) => {
  sample();
  const t = performance.now();
  if (t - lastPrint > 5_000) {
    lastPrint = t;
    process.stdout.write(`  replayed ${fmt(p.events)} events (${(p.fraction * 100).toFixed(0)} %)\r`);
  }
});
sample();
const simCpu = cpu() - simCpu0;
const simMain = mainCpu() - simMain0;
const rate = result.events_per_second;
const cpuRate = result.totals.events / simCpu;
const maxrss = process.resourceUsage().maxRSS * 1024;
const mb = (b: number) => `${(b / 1048576).toFixed(0)} MB`;
console.log(
  `\n  simulate: ${fmt(result.totals.events)} events in ${(result.elapsed_ms / 1000).toFixed(1)} s, ${fmt(rate)} events/s wall, ${fmt(cpuRate)} events per CPU second (${simCpu.toFixed(1)} CPU s, all threads); main thread ${simMain.toFixed(1)} CPU s = ${fmt(result.totals.events / simMain)} events per main-thread CPU second`,
);
console.log(
  `  outcome: ${fmt(result.totals.allowed)} allowed, ${fmt(result.totals.denied)} denied, ${fmt(result.totals.overage)} over a soft limit, ${fmt(result.totals.alerts)} alerts; cost ${result.totals.cost_actual} → ${result.totals.cost_proposed} USD`,
);
console.log(
  `  memory: RSS ${mb(rssBefore)} before the replay, peak ${mb(peak.rss)} during it (sampled per page); process maxrss ${mb(maxrss)}`,
);
// With --scan-runs 0 there is no bare scan to compare with: the ratio is left out.
console.log(
  Number.isFinite(rate / scanRate)
    ? `  ratio: replay / bare scan = ${(rate / scanRate).toFixed(3)} wall, ${(cpuRate / scanCpuRate).toFixed(3)} per CPU second (target: >= 200,000 events/s)`
    : "  ratio: no bare scan in this run (--scan-runs 0) (target: >= 200,000 events/s)",
);
await store.close();
