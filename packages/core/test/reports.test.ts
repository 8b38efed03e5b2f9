import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DAY_MS, HOUR_MS, nextWindowStartUtc, windowStartUtc } from "../src/period/calendar.js";
import type { RollupTotals } from "../src/ports/store.js";
import {
  chunkRange,
  csvField,
  csvLine,
  type Granularity,
  linearTrend,
  parseCsv,
  percentChange,
  percentShare,
  periodStarts,
  planReads,
  UsageMerger,
} from "../src/reports/index.js";

const GRANULARITIES: (Granularity | null)[] = [null, "hour", "day", "week", "month"];
// Hours from 2023-01-01 over about three years.
const BASE = Date.UTC(2023, 0, 1);
const hourArb = fc.integer({ min: 0, max: 3 * 366 * 24 }).map((h) => BASE + h * HOUR_MS);
const rangeArb = fc
  .tuple(hourArb, hourArb)
  .filter(([a, b]) => a !== b)
  .map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as const);

describe("planReads", () => {
  it("covers [from, to) exactly once (subtracted hours counted negative), days on whole UTC days", () => {
    fc.assert(
      fc.property(rangeArb, fc.constantFrom(...GRANULARITIES), ([from, to], g) => {
        const reads = planReads(from, to, g);
        const cover = new Map<number, number>();
        for (const r of reads) {
          expect(r.to).toBeGreaterThan(r.from);
          if (r.resolution === "day") {
            expect(r.from % DAY_MS).toBe(0);
            expect(r.to % DAY_MS).toBe(0);
            expect(r.subtract).toBeUndefined();
          }
          if (g === "hour") expect(r.resolution).toBe("hour");
          for (let h = r.from; h < r.to; h += HOUR_MS)
            cover.set(h, (cover.get(h) ?? 0) + (r.subtract ? -1 : 1));
        }
        const wrong: string[] = [];
        for (const [h, n] of cover)
          if (n !== (h >= from && h < to ? 1 : 0)) wrong.push(new Date(h).toISOString());
        for (let h = from; h < to; h += HOUR_MS)
          if (cover.get(h) !== 1) wrong.push(new Date(h).toISOString());
        expect(wrong).toEqual([]);
        // At most half a day of hour rows at each end.
        const hours = reads.filter((r) => r.resolution === "hour" && g !== "hour");
        for (const r of hours)
          if (planReads(from, to, g).some((x) => x.resolution === "day"))
            expect(r.to - r.from).toBeLessThanOrEqual(12 * HOUR_MS);
      }),
    );
  });

  it("merging its reads equals merging the hour rows of the range", () => {
    fc.assert(
      fc.property(
        fc.array(rowArb, { maxLength: 80 }),
        rangeArb,
        fc.constantFrom(...GRANULARITIES),
        fc.subarray(["customer", "model"]),
        (rows, [from, to], granularity, groupBy) => {
          const hourRows = rows.map(toTotals);
          // The day table: hour rows added up per UTC day, customer and dimensions.
          const days = new Map<string, RollupTotals>();
          for (const r of hourRows) {
            const day = Math.floor(r.bucket / DAY_MS) * DAY_MS;
            const k = `${day}|${r.customer}|${r.dimensions}`;
            const d = days.get(k);
            if (!d) days.set(k, { ...r, bucket: day });
            else {
              d.events += r.events;
              d.tokensIn += r.tokensIn;
              d.tokensOut += r.tokensOut;
              d.steps += r.steps;
              d.cost += r.cost;
            }
          }
          const o = { granularity, from, to, groupBy, filter: {} };
          const viaReads = new UsageMerger(o);
          for (const read of planReads(from, to, granularity)) {
            const table = read.resolution === "hour" ? hourRows : [...days.values()];
            for (const r of table)
              if (r.bucket >= read.from && r.bucket < read.to) viaReads.add(r, read.subtract === true);
          }
          const direct = new UsageMerger(o);
          for (const r of hourRows) if (r.bucket >= from && r.bucket < to) direct.add(r);
          expect(viaReads.take()).toEqual(direct.take());
        },
      ),
    );
  });

  it("reads days in the middle of a 30-day range and hours at its ends", () => {
    const from = Date.UTC(2026, 9, 24, 5);
    const to = Date.UTC(2026, 10, 23, 5);
    expect(planReads(from, to, null)).toEqual([
      { resolution: "day", from: Date.UTC(2026, 9, 24), to: Date.UTC(2026, 10, 23) },
      { resolution: "hour", from: Date.UTC(2026, 10, 23), to },
      { resolution: "hour", from: Date.UTC(2026, 9, 24), to: from, subtract: true },
    ]);
    expect(() => planReads(from + 1, to, null)).toThrow(RangeError);
  });
});

describe("chunkRange", () => {
  it("is contiguous and cuts only on period boundaries", () => {
    fc.assert(
      fc.property(rangeArb, fc.constantFrom(...GRANULARITIES), ([from, to], g) => {
        const chunks = chunkRange(from, to, g);
        expect(chunks[0]![0]).toBe(from);
        expect(chunks[chunks.length - 1]![1]).toBe(to);
        for (let i = 1; i < chunks.length; i++) {
          expect(chunks[i]![0]).toBe(chunks[i - 1]![1]);
          if (g) expect(windowStartUtc(g, chunks[i]![0])).toBe(chunks[i]![0]);
        }
        if (g === null) expect(chunks).toHaveLength(1);
      }),
    );
  });
});

type RowValue = {
  bucket: number;
  customer: string;
  model: string | undefined;
  feature: string;
  events: bigint;
  tokensIn: bigint;
  tokensOut: bigint;
  cost: bigint;
};

const MODELS = ["gpt-4o", "claude", "gemini"];
const rowArb = fc.record({
  bucket: hourArb,
  customer: fc.constantFrom("acme", "bob"),
  model: fc.option(fc.constantFrom(...MODELS), { nil: undefined }),
  feature: fc.constantFrom("chat", "agent"),
  events: fc.bigInt({ min: 1n, max: 1000n }),
  tokensIn: fc.bigInt({ min: 0n, max: 2n ** 60n }),
  tokensOut: fc.bigInt({ min: 0n, max: 10n ** 6n }),
  cost: fc.bigInt({ min: 0n, max: 2n ** 62n }),
});

function toTotals(r: RowValue): RollupTotals {
  const dims: Record<string, string> = { feature: r.feature };
  if (r.model) dims.model = r.model;
  return {
    bucket: r.bucket,
    customer: r.customer,
    dimensions: JSON.stringify(Object.fromEntries(Object.entries(dims).sort())),
    events: r.events,
    tokensIn: r.tokensIn,
    tokensOut: r.tokensOut,
    steps: r.events,
    cost: r.cost,
  };
}

describe("UsageMerger", () => {
  it("puts every row in exactly one period and group: totals add up to the grand total, exactly", () => {
    fc.assert(
      fc.property(
        fc.array(rowArb, { maxLength: 60 }),
        fc.constantFrom(...GRANULARITIES),
        fc.subarray(["customer", "model", "feature"]),
        fc.option(fc.constantFrom(...MODELS), { nil: undefined }),
        (rows, granularity, groupBy, model) => {
          const from = BASE;
          const to = BASE + 3 * 366 * DAY_MS + HOUR_MS;
          const filter: Record<string, string> = model ? { model } : {};
          const m = new UsageMerger({ granularity, from, to, groupBy, filter });
          for (const r of rows) m.add(toTotals(r));
          const out = m.take();
          const kept = rows.filter((r) => !model || r.model === model);
          const sum = (xs: bigint[]) => xs.reduce((a, b) => a + b, 0n);
          expect(sum(out.map((r) => r.totals.cost))).toBe(sum(kept.map((r) => r.cost)));
          expect(sum(out.map((r) => r.totals.tokensIn))).toBe(sum(kept.map((r) => r.tokensIn)));
          expect(sum(out.map((r) => r.totals.requests))).toBe(sum(kept.map((r) => r.events)));
          const keys = new Set(out.map((r) => `${r.periodStart}|${JSON.stringify(r.group)}`));
          expect(keys.size).toBe(out.length);
          for (let i = 0; i < out.length; i++) {
            const r = out[i]!;
            if (granularity) {
              expect(r.periodStart).toBe(windowStartUtc(granularity, r.periodStart));
              expect(r.periodEnd).toBe(nextWindowStartUtc(granularity, r.periodStart));
            } else expect([r.periodStart, r.periodEnd]).toEqual([from, to]);
            expect(r.group).toHaveLength(groupBy.length);
            if (i > 0) expect(out[i - 1]!.periodStart).toBeLessThanOrEqual(r.periodStart);
          }
        },
      ),
    );
  });

  it("groups a missing dimension as null, first", () => {
    const m = new UsageMerger({
      granularity: "week",
      from: BASE,
      to: BASE + 30 * DAY_MS,
      groupBy: ["model"],
      filter: {},
    });
    const base = { events: 1n, tokensIn: 1n, tokensOut: 0n, steps: 0n, cost: 0n, customer: null };
    m.add({ ...base, bucket: Date.UTC(2023, 0, 4, 10), dimensions: '{"model":"b"}' });
    m.add({ ...base, bucket: Date.UTC(2023, 0, 5, 10), dimensions: "{}" });
    m.add({ ...base, bucket: Date.UTC(2023, 0, 8, 23), dimensions: '{"model":"b"}' });
    expect(
      m
        .take()
        .map((r) => [new Date(r.periodStart).toISOString().slice(0, 10), r.group[0], r.totals.tokensIn]),
    ).toEqual([
      ["2023-01-02", null, 1n],
      ["2023-01-02", "b", 2n],
    ]);
  });
});

describe("periodStarts", () => {
  it("lists weeks from Monday and months from the 1st", () => {
    expect(
      periodStarts("week", Date.UTC(2026, 10, 25), Date.UTC(2026, 11, 1)).map((t) =>
        new Date(t).toISOString(),
      ),
    ).toEqual(["2026-11-23T00:00:00.000Z", "2026-11-30T00:00:00.000Z"]);
    expect(periodStarts("month", Date.UTC(2024, 0, 31), Date.UTC(2024, 2, 2))).toEqual([
      Date.UTC(2024, 0, 1),
      Date.UTC(2024, 1, 1),
      Date.UTC(2024, 2, 1),
    ]);
  });
});

describe("csv", () => {
  it("quotes per RFC 4180 only where needed", () => {
    expect(csvField("gpt-4o")).toBe("gpt-4o");
    expect(csvField('say "hi", then')).toBe('"say ""hi"", then"');
    expect(csvField("two\r\nlines")).toBe('"two\r\nlines"');
    expect(csvField(null)).toBe("");
    expect(csvField(2n ** 64n)).toBe("18446744073709551616");
    expect(csvLine(["a", 1, null, "x,y"])).toBe('a,1,,"x,y"\r\n');
  });

  it("round-trips any fields", () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.string({ unit: "grapheme" }), { minLength: 2, maxLength: 5 }), {
          minLength: 1,
          maxLength: 5,
        }),
        (rows) => {
          const text = rows.map((r) => csvLine(r)).join("");
          expect(parseCsv(text)).toEqual(rows);
        },
      ),
    );
  });
});

describe("trend", () => {
  it("percent change and share, exact to 2 decimals", () => {
    expect(percentChange(0n, 5n)).toBeNull();
    expect(percentChange(200n, 300n)).toBe(50);
    expect(percentChange(300n, 200n)).toBe(-33.33);
    expect(percentChange(3n, 2n)).toBe(-33.33);
    expect(percentChange(3n, 4n)).toBe(33.33);
    expect(percentChange(6n, 7n)).toBe(16.67);
    expect(percentShare(1n, 3n)).toBe(33.33);
    expect(percentShare(2n, 3n)).toBe(66.67);
    expect(percentShare(0n, 0n)).toBe(0);
    expect(percentShare(2n ** 70n, 2n ** 71n)).toBe(50);
  });

  it("least-squares slope per period", () => {
    expect(linearTrend([1n, 2n, 3n, 4n])).toEqual({ slope: 1, direction: "up" });
    expect(linearTrend([10n, 10n, 10n])).toEqual({ slope: 0, direction: "flat" });
    expect(linearTrend([9n, 5n, 1n])).toEqual({ slope: -4, direction: "down" });
    expect(linearTrend([5n])).toEqual({ slope: 0, direction: "flat" });
  });
});
