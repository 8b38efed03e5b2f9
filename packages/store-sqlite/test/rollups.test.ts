import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalFlat } from "../../core/src/canonical.js";
import { DAY_MS, HOUR_MS, RollupBatch } from "../src/rollups.js";

type Row = unknown[];
/** Statements that keep the rows they are run with. */
function capture() {
  const rows = { hour: [] as Row[], day: [] as Row[], run: [] as Row[] };
  const stmt = (into: Row[]) => ({ run: (...args: unknown[]) => into.push(args) });
  return { rows, stmts: { hour: stmt(rows.hour), day: stmt(rows.day), run: stmt(rows.run) } };
}

interface Ev {
  ws: number;
  type: string;
  customer: string;
  ts: number;
  vals: Record<string, number>;
  dims: Record<string, string>;
}

/** The rows a batch must write, summed independently: one per (ws, bucket, customer, type, dims). */
function reference(events: Ev[], size: number) {
  const hour = new Map<string, Row>();
  const day = new Map<string, Row>();
  for (const e of events) {
    const { run: _, ...rest } = e.dims;
    const dims = e.dims.run === undefined ? canonicalFlat(e.dims) : canonicalFlat(rest);
    for (const [table, bucket] of [
      [hour, Math.floor(e.ts / HOUR_MS) * HOUR_MS],
      [day, Math.floor(e.ts / DAY_MS) * DAY_MS],
    ] as const) {
      const key = JSON.stringify([e.ws, bucket, e.customer, e.type, dims]);
      const row = table.get(key) ?? [e.ws, bucket, e.customer, e.type, dims, 0, 0, 0, 0, 0];
      row[5] = (row[5] as number) + 1;
      for (const [i, k] of [
        [6, "tokens_in"],
        [7, "tokens_out"],
        [8, "steps"],
        [9, "cost"],
      ] as const)
        row[i] = (row[i] as number) + (e.vals[k] ?? 0);
      table.set(key, row);
    }
  }
  const sorted = (m: Map<string, Row>) => [...m.values()].map((r) => r.slice(0, size)).sort(byJson);
  return { hour: sorted(hour), day: sorted(day) };
}
const byJson = (a: Row, b: Row) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1);

const name = fc.constantFrom("a", "b", "a\u0000b", "b\u0000c", "c", "a\u0000");
const event = fc.record({
  ws: fc.constantFrom(1, 2),
  type: name,
  customer: name,
  ts: fc.integer({ min: 0, max: 3 * DAY_MS }),
  vals: fc.record(
    {
      tokens_in: fc.nat(1000),
      tokens_out: fc.nat(1000),
      steps: fc.nat(3),
      cost: fc.nat(10_000),
      x: fc.nat(9),
    },
    { requiredKeys: [] },
  ),
  dims: fc.record(
    {
      model: fc.constantFrom("m1", "m2"),
      workflow: fc.constantFrom("w1", "w2"),
      run: fc.constantFrom("r1", "r2"),
    },
    { requiredKeys: [] },
  ),
});

describe("RollupBatch", () => {
  it("writes one hour row and one day row per (workspace, bucket, customer, type, dimensions), with the sums", () => {
    fc.assert(
      fc.property(fc.array(event, { maxLength: 60 }), (events) => {
        const batch = new RollupBatch();
        for (const e of events)
          batch.add(e.ws, e.type, e.customer, e.ts, canonicalFlat(e.vals), canonicalFlat(e.dims));
        const { rows, stmts } = capture();
        batch.write(stmts as never);
        expect(batch.size).toBe(0);
        const want = reference(events, 10);
        expect(rows.hour.map((r) => r.slice(0, 10)).sort(byJson)).toEqual(want.hour);
        expect(rows.day.sort(byJson)).toEqual(want.day);
        // The hour row's vals: every value's sum, canonical.
        for (const r of rows.hour) {
          const sums: Record<string, number> = {};
          for (const e of events) {
            const { run: _, ...rest } = e.dims;
            const dims = canonicalFlat(e.dims.run === undefined ? e.dims : rest);
            if (e.ws !== r[0] || Math.floor(e.ts / HOUR_MS) * HOUR_MS !== r[1]) continue;
            if (e.customer !== r[2] || e.type !== r[3] || dims !== r[4]) continue;
            for (const k in e.vals) sums[k] = (sums[k] ?? 0) + (e.vals as Record<string, number>)[k]!;
          }
          expect(r[10]).toBe(canonicalFlat(sums));
        }
      }),
      { numRuns: 300 },
    );
  });

  it("keeps customers and types apart whatever characters they hold", () => {
    // Joined with a NUL, ("a\0b", "c") and ("a", "b\0c") would be one key.
    const batch = new RollupBatch();
    batch.add(1, "c", "a\u0000b", HOUR_MS, '{"tokens_in":1}', "{}");
    batch.add(1, "b\u0000c", "a", HOUR_MS, '{"tokens_in":2}', "{}");
    const { rows, stmts } = capture();
    batch.write(stmts as never);
    expect(rows.hour.map((r) => [r[2], r[3], r[6]])).toEqual([
      ["a\u0000b", "c", 1],
      ["a", "b\u0000c", 2],
    ]);
    expect(rows.day.map((r) => [r[2], r[3], r[6]])).toEqual([
      ["a\u0000b", "c", 1],
      ["a", "b\u0000c", 2],
    ]);
  });
});
