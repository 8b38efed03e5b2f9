/**
 * bench/ingest: events/s for batched POST /v1/events into the embedded SQLite store, beside a baseline
 * measured in the same run: raw better-sqlite3 inserts of the same rows, in transactions of the same
 * batch size, into the same schema with the same pragmas (WAL, synchronous=FULL).
 *
 *   npm run bench:ingest -- [--events 300000] [--batch 1000] [--connections 16]
 *
 * Events replay ../shared/data/azure-llm-2023 (conv + code, cycled), with unique ids.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { migrate } from "@tollgate/store-sqlite";
import Database from "better-sqlite3";
import { Pool } from "undici";
import { readTrace } from "../test/support/azure.js";
import { cpuSeconds, fmt, spawnServer, threadCpuSeconds } from "./support.js";

const { values: args } = parseArgs({
  options: {
    events: { type: "string", default: "300000" },
    batch: { type: "string", default: "1000" },
    connections: { type: "string", default: "16" },
  },
});
const total = Number(args.events);
const batchSize = Number(args.batch);
const connections = Number(args.connections);

const trace = [...readTrace("conv"), ...readTrace("code")];
const models = ["gpt-4o", "gpt-4o-mini", "claude-3.5-sonnet", "gemini-1.5-flash"];

interface Ev {
  id: string;
  type: string;
  customer: string;
  timestamp: string;
  values: { tokens_in: number; tokens_out: number };
  dimensions: { model: string; workflow: string };
}
function makeEvent(i: number): Ev {
  const row = trace[i % trace.length]!;
  return {
    id: `evt_${i}`,
    type: "llm.completion",
    customer: `cust_${i % 100}`,
    timestamp: row.iso,
    values: { tokens_in: row.contextTokens, tokens_out: row.generatedTokens },
    dimensions: { model: models[i % models.length]!, workflow: `wf_${i % 10}` },
  };
}

const batches: Ev[][] = [];
for (let i = 0; i < total; i += batchSize) {
  batches.push(Array.from({ length: Math.min(batchSize, total - i) }, (_, j) => makeEvent(i + j)));
}

// ---- baseline: raw better-sqlite3, same rows, same schema, same pragmas ------------------------
function baseline(): { rate: number; cpuUs: number } {
  const dir = mkdtempSync(join(tmpdir(), "tollgate-baseline-"));
  const db = new Database(join(dir, "raw.db"));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  migrate(db);
  db.prepare("INSERT INTO workspaces (id, created_at) VALUES ('default', 0)").run();
  const insert = db.prepare(
    "INSERT INTO events (ws, id, type, customer, ts, vals, dims, fp) VALUES (1, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (ws, id) DO NOTHING",
  );
  // Rows are prepared before the clock starts: only the inserts are timed.
  const rows = batches.map((b) =>
    b.map((e) => [
      e.id,
      e.type,
      e.customer,
      Date.parse(e.timestamp),
      JSON.stringify(e.values),
      JSON.stringify(e.dimensions),
      createHash("sha256").update(e.id).digest().subarray(0, 16),
    ]),
  );
  const tx = db.transaction((batch: unknown[][]) => {
    for (const r of batch) insert.run(...r);
  });
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (const b of rows) tx(b);
  const seconds = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  db.close();
  rmSync(dir, { recursive: true, force: true });
  return { rate: total / seconds, cpuUs: (c.user + c.system) / total };
}

// ---- Tollgate over HTTP ------------------------------------------------------------------------
interface HttpFigures {
  rate: number;
  p50: number;
  p99: number;
  /** Server CPU µs per event: all threads, the main thread, the busiest other thread (the writer). */
  cpuUs: number;
  mainUs: number;
  writerUs: number;
}

async function overHttp(): Promise<HttpFigures> {
  const server = await spawnServer();
  try {
    const bodies = batches.map((b) => JSON.stringify({ events: b }));
    const pool = new Pool(server.url, { connections, pipelining: 1 });
    const headers = { authorization: `Bearer ${server.adminKey}`, "content-type": "application/json" };
    // Warm up the server (JIT, caches) with a separate workspace-free small batch.
    await pool
      .request({
        method: "POST",
        path: "/v1/events",
        headers,
        body: JSON.stringify({ events: [{ ...makeEvent(0), id: "warmup" }] }),
      })
      .then((r) => r.body.dump());
    const latencies: number[] = [];
    let next = 0;
    let accepted = 0;
    const pid = server.child.pid;
    const cpu0 = cpuSeconds(pid);
    const threads0 = threadCpuSeconds(pid);
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (next < bodies.length) {
          const body = bodies[next++]!;
          const s = performance.now();
          const res = await pool.request({ method: "POST", path: "/v1/events", headers, body });
          const json = (await res.body.json()) as { accepted: number };
          if (res.statusCode !== 202) throw new Error(`status ${res.statusCode}: ${JSON.stringify(json)}`);
          accepted += json.accepted;
          latencies.push(performance.now() - s);
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const cpuUs = ((cpuSeconds(pid) - cpu0) / total) * 1e6;
    // Per thread: the main thread's tid is the pid; the writer is the busiest of the others (the
    // rest are V8's GC and compiler helpers and libuv's pool).
    let mainUs = Number.NaN;
    let writerUs = Number.NaN;
    for (const [tid, seconds] of threadCpuSeconds(pid)) {
      const us = ((seconds - (threads0.get(tid) ?? 0)) / total) * 1e6;
      if (tid === pid) mainUs = us;
      else if (!(us <= writerUs)) writerUs = us;
    }
    await pool.close();
    if (accepted !== total) throw new Error(`accepted ${accepted} of ${total}`);
    latencies.sort((a, b) => a - b);
    const pick = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!;
    return { rate: total / seconds, p50: pick(0.5), p99: pick(0.99), cpuUs, mainUs, writerUs };
  } finally {
    await server.stop();
  }
}

const base = baseline();
const http = await overHttp();
console.log(`bench/ingest: ${fmt(total)} events, batches of ${batchSize}, ${connections} connections`);
// CPU per event: the baseline's process, and the server's (all its threads: HTTP, validation,
// pricing, the writer thread's inserts). Less sensitive to the machine's load and fsync times than
// events/s, so it is the figure to compare between runs on a shared machine.
console.log(
  `  baseline  raw better-sqlite3 batched inserts   ${fmt(base.rate).padStart(10)} events/s  ` +
    `CPU ${base.cpuUs.toFixed(1)} µs/event`,
);
console.log(
  `  tollgate  POST /v1/events over HTTP            ${fmt(http.rate).padStart(10)} events/s  ` +
    `CPU ${http.cpuUs.toFixed(1)} µs/event (server, all threads; main ${http.mainUs.toFixed(1)}, writer ${http.writerUs.toFixed(1)})  ` +
    `(${(http.rate / base.rate).toFixed(2)}x baseline; batch latency p50 ${http.p50.toFixed(1)} ms, p99 ${http.p99.toFixed(1)} ms)`,
);
console.log(`  targets: >= 0.50x baseline, >= 50,000 events/s`);
