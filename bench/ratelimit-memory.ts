/**
 * bench/ratelimit-memory: bytes per active key held by a RateLimitTable — the Map entry, the key string
 * and the key's slot in the Float64Array slab — measured on the V8 heap after a full GC.
 *
 *   node --expose-gc --import tsx bench/ratelimit-memory.ts [--keys 1000000] [--key-length 20]
 *
 * Keys are flat strings like those parsed from a request (not concatenation ropes), held only by the table.
 */
import { parseArgs } from "node:util";
import { evaluate, type RateLimitAlgorithm, RateLimitTable } from "../packages/core/src/ratelimit/index.js";

const { values } = parseArgs({
  options: { keys: { type: "string", default: "1000000" }, "key-length": { type: "string", default: "20" } },
});
const keyCount = Number(values.keys);
const keyLength = Number(values["key-length"]);

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with node --expose-gc");

function heapBytes(): number {
  for (let i = 0; i < 3; i++) gc!();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function measure(algorithm: RateLimitAlgorithm) {
  const config = { algorithm, limit: 100, windowMs: 60_000 };
  const before = heapBytes();
  // JSON.parse yields flat sequential strings, as keys taken from a request body or header would be.
  const keys: string[] = JSON.parse(
    JSON.stringify(Array.from({ length: keyCount }, (_, i) => `k${i.toString(36)}`.padEnd(keyLength, "_"))),
  );
  const table = new RateLimitTable(config);
  const now = 1_700_000_000_000;
  for (const key of keys) table.set(key, evaluate(config, undefined, { cost: 1 }, now).state);
  keys.length = 0;
  const after = heapBytes();
  const total = after - before;
  const slabPerKey = table.slabBytes / table.size;
  return {
    algorithm,
    keys: table.size,
    slots: table.capacity,
    bytesPerKey: Math.round(total / table.size),
    slabBytesPerKey: Math.round(slabPerKey),
    mapAndKeyBytesPerKey: Math.round((total - table.slabBytes) / table.size),
    table,
  };
}

console.log(`${keyCount} keys of ${keyLength} characters, node ${process.version}`);
for (const algorithm of ["sliding_window", "token_bucket"] as const) {
  const { table, ...row } = measure(algorithm);
  console.log(JSON.stringify(row));
  table.clear();
}
