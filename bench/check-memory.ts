/**
 * Part (c) of bench/check: bytes per active rate-limit key held in process, measured on the V8 heap
 * (heapUsed + arrayBuffers) after full GCs, for N active keys:
 *
 *   - limiter: the real path — Engine.check over N distinct `dimensions.key` values of one customer,
 *     with one per-key sliding_window rate limit; what stays is the Limiter's RateLimitTable entry
 *     (the Limiter keeps a table per limit keyed by subject: the subject string, the Map entry, the
 *     slab slot).
 *   - table/limiter-keys: a RateLimitTable holding the same key strings, flat (as if interned once).
 *   - table/subject-keys: a RateLimitTable keyed by the subject alone ("key_123456"), i.e. what a
 *     table per limit would hold.
 *   - the same two for token_bucket (2-number state instead of 10).
 *
 *   node --expose-gc --import tsx bench/check-memory.ts [--keys 200000] [--json]
 */
import { parseArgs } from "node:util";
import { Engine, evaluate, type RateLimitConfig, RateLimitTable } from "@tollgate/core";
import { keyMinter } from "@tollgate/server";
import { SqliteStore } from "@tollgate/store-sqlite";
import { isValidTimeZone } from "../packages/cli/src/timezone.js";

const { values } = parseArgs({
  options: { keys: { type: "string", default: "200000" }, json: { type: "boolean", default: false } },
});
const N = Number(values.keys);

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with node --expose-gc");

function heapBytes(): number {
  for (let i = 0; i < 4; i++) gc!();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

const WS = "default";
const LIMIT_ID = "rpm-per-key";
const subject = (i: number) => `key_${100_000 + i}`; // "key_100000" … : 10 characters
/** The Limiter's rate-state key (limiter.ts subjectKey) for a workspace-scoped per-key limit. */
const limiterKey = (i: number) => `${WS}\u0001rate\u0001ws\u0001${LIMIT_ID}\u0001key\u0001${subject(i)}`;

export interface MemoryRow {
  name: string;
  algorithm: string;
  keyChars: number;
  keys: number;
  bytesPerKey: number;
  slabBytesPerKey: number;
  slabSlotBytes: number;
}

function tableRow(name: string, config: RateLimitConfig, makeKey: (i: number) => string): MemoryRow {
  const before = heapBytes();
  // JSON.parse gives flat sequential strings (no concatenation ropes), as a key parsed once would be.
  const keys: string[] = JSON.parse(JSON.stringify(Array.from({ length: N }, (_, i) => makeKey(i))));
  const table = new RateLimitTable(config);
  const now = Date.now();
  for (const key of keys) table.set(key, evaluate(config, undefined, { cost: 1 }, now).state);
  keys.length = 0;
  const bytes = heapBytes() - before;
  const row = {
    name,
    algorithm: config.algorithm,
    keyChars: makeKey(0).length,
    keys: table.size,
    bytesPerKey: bytes / table.size,
    slabBytesPerKey: table.slabBytes / table.size,
    slabSlotBytes: (1 + table.stateSize) * 8,
  };
  table.clear();
  return row;
}

async function limiterRow(algorithm: "sliding_window" | "token_bucket"): Promise<MemoryRow> {
  const store = new SqliteStore({ path: ":memory:" }); // SQLite's memory is outside the V8 heap
  try {
    const engine = new Engine({ store, clock: { now: () => Date.now() }, keys: keyMinter, isValidTimeZone });
    await engine.bootstrap(WS);
    await engine.start();
    await engine.putLimit(WS, "rate_limit", LIMIT_ID, {
      scope: "key",
      limit: 1000,
      window_seconds: 60,
      algorithm,
    });
    const check = (key: string) =>
      engine.check(WS, { event: { type: "llm.completion", customer: "cust_1", dimensions: { key } } });
    // Warm every cache (book, customer, effective set, the rate table) on a key outside the N.
    for (let i = 0; i < 1000; i++) await check(`warm_${i}`);
    const before = heapBytes();
    for (let i = 0; i < N; i++) {
      const r = await check(subject(i));
      if (!r.allowed) throw new Error("a check was denied");
    }
    const bytes = heapBytes() - before;
    const [table] = (
      engine.limiter as unknown as { rateTables: Map<string, RateLimitTable> }
    ).rateTables.values();
    if (!table || table.size !== N + 1000) throw new Error(`expected ${N + 1000} keys, got ${table?.size}`);
    return {
      name: "limiter",
      algorithm,
      keyChars: subject(0).length, // the Limiter's tables are keyed by subject
      keys: N,
      bytesPerKey: bytes / N,
      slabBytesPerKey: table.slabBytes / table.size,
      slabSlotBytes: (1 + table.stateSize) * 8,
    };
  } finally {
    await store.close();
  }
}

const rows: MemoryRow[] = [];
for (const algorithm of ["sliding_window", "token_bucket"] as const) {
  const config: RateLimitConfig = { algorithm, limit: 1000, windowMs: 60_000 };
  rows.push(await limiterRow(algorithm));
  rows.push(tableRow("table/limiter-keys", config, limiterKey));
  rows.push(tableRow("table/subject-keys", config, subject));
}

if (values.json) {
  process.stdout.write(`${JSON.stringify(rows)}\n`);
} else {
  console.log(`${N.toLocaleString("en-US")} active keys, node ${process.version}, heapUsed + arrayBuffers`);
  for (const r of rows) {
    console.log(
      `  ${r.name.padEnd(20)} ${r.algorithm.padEnd(15)} key ${String(r.keyChars).padStart(2)} chars  ` +
        `${r.bytesPerKey.toFixed(0).padStart(4)} B/key (slab ${r.slabBytesPerKey.toFixed(0)} B/key)`,
    );
  }
}
