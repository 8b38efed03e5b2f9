import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatInstant } from "../src/time.js";

/** What formatInstant gave before it formatted the time of day itself: toISOString, ".000" dropped. */
const reference = (ms: number) => {
  const iso = new Date(ms).toISOString();
  return iso.endsWith(".000Z") ? `${iso.slice(0, -5)}Z` : iso;
};

describe("formatInstant", () => {
  it("gives toISOString's characters (without .000) for any instant, in any order of calls", () => {
    const instant = fc.oneof(
      fc.integer({ min: 0, max: 253_402_300_799_999 }),
      fc.integer({ min: -8_640_000_000_000_000, max: 8_640_000_000_000_000 }),
      fc.double({ min: -1e13, max: 1e13, noNaN: true }),
      fc.constantFrom(0, 86_399_999, 86_400_000, 253_402_300_799_999, 253_402_300_800_000, -1, 1.5),
    );
    // Runs of nearby instants (same day, next day, previous ms) exercise the remembered day.
    const run = fc.tuple(
      instant,
      fc.array(fc.integer({ min: -90_000_000, max: 90_000_000 }), { maxLength: 20 }),
    );
    fc.assert(
      fc.property(fc.array(run, { maxLength: 10 }), (runs) => {
        for (const [base, offsets] of runs) {
          for (const ms of [base, ...offsets.map((o) => base + o)]) {
            if (Math.abs(ms) > 8_640_000_000_000_000) continue;
            expect(formatInstant(ms)).toBe(reference(ms));
          }
        }
      }),
      { numRuns: 3000 },
    );
  });

  it("keeps milliseconds when they are not zero", () => {
    expect(formatInstant(Date.UTC(2026, 10, 23, 13, 5, 9, 7))).toBe("2026-11-23T13:05:09.007Z");
    expect(formatInstant(Date.UTC(2026, 10, 23, 13, 5, 9, 70))).toBe("2026-11-23T13:05:09.070Z");
    expect(formatInstant(Date.UTC(2026, 10, 23, 13, 5, 9))).toBe("2026-11-23T13:05:09Z");
    expect(formatInstant(Date.UTC(2026, 10, 23, 23, 59, 59, 999))).toBe("2026-11-23T23:59:59.999Z");
  });
});
