/**
 * The cost of alerts on the ingest path: events/s through Engine.recordEvents (in process, SQLite,
 * synchronous=normal) with three quotas per customer, with the limiter's alert observer on and off,
 * alternating in one process (the baseline is measured in the same run). `--over` makes every batch
 * land above every threshold (the observer then evaluates levels at every commit).
 *
 *   npx tsx test/webhooks/observer-bench.ts [--over]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Engine } from "@tollgate/core";
import { keyMinter } from "@tollgate/server";
import { SqliteStore } from "@tollgate/store-sqlite";

const OVER = process.argv.includes("--over");
const dir = mkdtempSync(join(tmpdir(), "tg-obs-"));
const store = new SqliteStore({ path: join(dir, "t.db"), synchronous: "normal" });
const now = Date.UTC(2026, 10, 23, 10);
const engine = new Engine({
  store,
  clock: { now: () => now },
  keys: keyMinter,
  isValidTimeZone: () => true,
} as never);
await engine.bootstrap("default");
await engine.start();
await engine.putMeter("default", "tokens", {
  event_type: "llm.completion",
  aggregation: "sum",
  value: ["tokens_in"],
});
await engine.putPlan("default", "pro", {
  name: "Pro",
  limits: [
    { id: "monthly", meter: "tokens", amount: OVER ? 1000 : 1_000_000_000, period: "month" },
    { id: "daily", meter: "tokens", amount: OVER ? 1000 : 50_000_000, period: "day" },
    {
      id: "per-model",
      meter: "tokens",
      amount: OVER ? 1000 : 10_000_000,
      period: "day",
      group_by: ["model"],
    },
  ],
} as never);
const CUSTOMERS = 100;
for (let c = 0; c < CUSTOMERS; c++) await engine.putCustomer("default", `c${c}`, { plan: "pro" });
// load the counters once, as checks would
for (let c = 0; c < CUSTOMERS; c++) await engine.customerLimits("default", `c${c}`);
const limiter = engine.limiter as unknown as { observer?: unknown };
const observer = limiter.observer;
let seq = 0;
async function run(on: boolean, batches: number) {
  limiter.observer = on ? observer : undefined;
  const t0 = performance.now();
  for (let b = 0; b < batches; b++) {
    const events = Array.from({ length: 1000 }, (_, i) => ({
      id: `e${++seq}`,
      type: "llm.completion",
      customer: `c${(b * 7 + i) % CUSTOMERS}`,
      values: { tokens_in: 100 },
      dimensions: { model: i % 2 ? "a" : "b" },
    }));
    await engine.recordEvents("default", events as never);
  }
  await engine.alerts.settle();
  return (batches * 1000) / ((performance.now() - t0) / 1000);
}
await run(true, 5);
await run(false, 5); // warm-up
const results: { on: number[]; off: number[] } = { on: [], off: [] };
for (let r = 0; r < 7; r++) {
  results.off.push(await run(false, 20));
  results.on.push(await run(true, 20));
}
const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
console.log(
  JSON.stringify({
    off: results.off.map(Math.round),
    on: results.on.map(Math.round),
    medianOff: Math.round(med(results.off)),
    medianOn: Math.round(med(results.on)),
    ratio: +(med(results.on) / med(results.off)).toFixed(3),
  }),
);
await store.close();
rmSync(dir, { recursive: true, force: true });
