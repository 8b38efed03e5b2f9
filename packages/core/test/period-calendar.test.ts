/**
 * The UTC path (integer calendar arithmetic), rolling and all-time windows, and input checks.
 * Expectations come from Date's own UTC arithmetic.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ALL_TIME_START,
  type CalendarUnit,
  canonicalTimeZone,
  civilFromDays,
  daysFromCivil,
  daysInMonth,
  firstDayOfMonthIndex,
  INSTANT_MAX_MS,
  INSTANT_MIN_MS,
  isLeapYear,
  isValidTimeZone,
  monthIndexOfDay,
  nextPeriodStart,
  nextWindowStartUtc,
  type Period,
  periodWindow,
  windowStartUtc,
} from "../src/period/index.js";

const DAY = 86_400_000;
const UNITS: CalendarUnit[] = ["hour", "day", "week", "month"];

/** Every instant a Date can hold, with a day's margin. */
const anyInstant = fc.integer({ min: INSTANT_MIN_MS + DAY * 40, max: INSTANT_MAX_MS - DAY * 40 });
const recentInstant = fc.integer({ min: Date.UTC(1900, 0, 1), max: Date.UTC(2200, 0, 1) });
const instant = fc.oneof(anyInstant, recentInstant, recentInstant);
/** Epoch days a Date can hold (±100,000,000). */
const anyDay = fc.integer({ min: -100_000_000 + 40, max: 100_000_000 - 40 });

/** Date's UTC calendar: the reference for the integer arithmetic. */
function dateOf(days: number): { year: number; month: number; day: number } {
  const d = new Date(days * DAY);
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
}
function dateUtc(year: number, month: number, day: number): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  return d.getTime();
}

/** Window start by Date methods (no arithmetic on epoch numbers). */
function referenceStart(unit: CalendarUnit, t: number): number {
  const d = new Date(t);
  switch (unit) {
    case "hour":
      d.setUTCMinutes(0, 0, 0);
      return d.getTime();
    case "day":
      d.setUTCHours(0, 0, 0, 0);
      return d.getTime();
    case "week":
      d.setUTCHours(0, 0, 0, 0);
      d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() + 6) % 7));
      return d.getTime();
    case "month":
      d.setUTCHours(0, 0, 0, 0);
      d.setUTCDate(1);
      return d.getTime();
  }
}
function referenceNext(unit: CalendarUnit, start: number): number {
  const d = new Date(start);
  if (unit === "hour") d.setUTCHours(d.getUTCHours() + 1);
  else if (unit === "day") d.setUTCDate(d.getUTCDate() + 1);
  else if (unit === "week") d.setUTCDate(d.getUTCDate() + 7);
  else d.setUTCMonth(d.getUTCMonth() + 1);
  return d.getTime();
}

describe("proleptic Gregorian arithmetic", () => {
  it("civilFromDays and daysFromCivil agree with Date for every day a Date can hold", () => {
    fc.assert(
      fc.property(anyDay, (days) => {
        const expected = dateOf(days);
        expect(civilFromDays(days)).toEqual(expected);
        expect(daysFromCivil(expected.year, expected.month, expected.day)).toBe(days);
      }),
      { numRuns: 2000 },
    );
  });

  it("month indexes: the month of a day, and its first day", () => {
    fc.assert(
      fc.property(anyDay, (days) => {
        const { year, month } = dateOf(days);
        const k = monthIndexOfDay(days);
        expect(k).toBe(year * 12 + month - 1);
        expect(firstDayOfMonthIndex(k) * DAY).toBe(dateUtc(year, month, 1));
        expect(firstDayOfMonthIndex(k + 1) - firstDayOfMonthIndex(k)).toBe(daysInMonth(year, month));
      }),
      { numRuns: 2000 },
    );
  });

  it("leap years: 2024 and 2000 are, 2026, 2100 and 1900 are not", () => {
    expect([2024, 2000, 2026, 2100, 1900, 2400, -4, 0].map(isLeapYear)).toEqual([
      true,
      true,
      false,
      false,
      false,
      true,
      true,
      true,
    ]);
    expect(daysInMonth(2024, 2)).toBe(29);
    expect(daysInMonth(2026, 2)).toBe(28);
    expect(daysInMonth(2100, 2)).toBe(28);
    fc.assert(
      fc.property(
        fc.integer({ min: -270_000, max: 270_000 }),
        fc.integer({ min: 1, max: 12 }),
        (year, month) => {
          const last = new Date(0);
          last.setUTCFullYear(year, month, 0);
          expect(daysInMonth(year, month)).toBe(last.getUTCDate());
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe("UTC windows", () => {
  it.each(UNITS)("%s: windowStartUtc / nextWindowStartUtc match Date's calendar", (unit) => {
    fc.assert(
      fc.property(instant, (t) => {
        const start = windowStartUtc(unit, t);
        expect(start).toBe(referenceStart(unit, t));
        expect(nextWindowStartUtc(unit, start)).toBe(referenceNext(unit, start));
      }),
      { numRuns: 1000 },
    );
  });

  it.each(UNITS)("%s: periodWindow in UTC is [windowStartUtc, nextWindowStartUtc)", (unit) => {
    fc.assert(
      fc.property(instant, (t) => {
        const start = referenceStart(unit, t);
        const expected = { start, end: referenceNext(unit, start) };
        expect(periodWindow(unit, t)).toEqual(expected);
        expect(periodWindow(unit, t, { timezone: "UTC", billingAnchor: null })).toEqual(expected);
        expect(periodWindow(unit, t, { timezone: null })).toEqual(expected);
      }),
      { numRuns: 500 },
    );
  });

  it("examples: a Monday week, a leap February", () => {
    const t = Date.UTC(2024, 1, 29, 13, 5); // Thursday Feb 29 2024
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    const w = (p: Period) => {
      const x = periodWindow(p, t);
      return [iso(x.start), iso(x.end)];
    };
    expect(w("hour")).toEqual(["2024-02-29T13:00:00.000Z", "2024-02-29T14:00:00.000Z"]);
    expect(w("day")).toEqual(["2024-02-29T00:00:00.000Z", "2024-03-01T00:00:00.000Z"]);
    expect(w("week")).toEqual(["2024-02-26T00:00:00.000Z", "2024-03-04T00:00:00.000Z"]);
    expect(w("month")).toEqual(["2024-02-01T00:00:00.000Z", "2024-03-01T00:00:00.000Z"]);
  });

  it("anchored months in UTC match Date arithmetic: day min(anchor day, month length), anchor's time", () => {
    const anchorArb = fc.oneof(
      fc.integer({ min: Date.UTC(1900, 0, 1), max: Date.UTC(2200, 0, 1) }),
      fc
        .tuple(
          fc.integer({ min: 1900, max: 2199 }),
          fc.integer({ min: 0, max: 11 }),
          fc.integer({ min: 28, max: 31 }),
        )
        .map(([y, m, d]) => Date.UTC(y, m, d, 23, 59, 59, 999)),
    );
    fc.assert(
      fc.property(recentInstant, anchorArb, (t, anchor) => {
        const a = new Date(anchor);
        const time = anchor - Date.UTC(a.getUTCFullYear(), a.getUTCMonth(), a.getUTCDate());
        const cycleStart = (year: number, month0: number) => {
          const last = new Date(Date.UTC(year, month0 + 1, 0)).getUTCDate();
          return Date.UTC(year, month0, Math.min(a.getUTCDate(), last)) + time;
        };
        const d = new Date(t);
        let start = cycleStart(d.getUTCFullYear(), d.getUTCMonth());
        let next = cycleStart(d.getUTCFullYear(), d.getUTCMonth() + 1);
        if (start > t) {
          next = start;
          start = cycleStart(d.getUTCFullYear(), d.getUTCMonth() - 1);
        }
        expect(periodWindow("month", t, { billingAnchor: anchor })).toEqual({ start, end: next });
      }),
      { numRuns: 1000 },
    );
  });

  it("anchored weeks in UTC start on the anchor's weekday and time", () => {
    fc.assert(
      fc.property(recentInstant, recentInstant, (t, anchor) => {
        const w = periodWindow("week", t, { billingAnchor: anchor });
        expect(w.start).toBeLessThanOrEqual(t);
        expect(w.end).toBe(w.start + 7 * DAY);
        expect(t).toBeLessThan(w.end!);
        expect(Math.abs(w.start - anchor) % (7 * DAY)).toBe(0);
      }),
      { numRuns: 500 },
    );
  });
});

describe("all_time and rolling periods", () => {
  it("all_time is one window from the earliest Date instant, with no end", () => {
    fc.assert(
      fc.property(anyInstant, (t) => {
        expect(periodWindow("all_time", t)).toEqual({ start: ALL_TIME_START, end: null });
        expect(ALL_TIME_START).toBeLessThanOrEqual(t);
        expect(nextPeriodStart("all_time", t)).toBeNull();
      }),
    );
    expect(new Date(ALL_TIME_START).toISOString()).toBe("-271821-04-20T00:00:00.000Z");
    expect(
      periodWindow("all_time", Date.UTC(2026, 0, 1), { timezone: "Asia/Kolkata", billingAnchor: 5 }),
    ).toEqual({
      start: ALL_TIME_START,
      end: null,
    });
  });

  it("rolling: (t - N s, t], sliding with t", () => {
    fc.assert(
      fc.property(recentInstant, fc.integer({ min: 1, max: 400 * 86_400 }), (t, seconds) => {
        const w = periodWindow({ rolling_seconds: seconds }, t, { timezone: "America/New_York" });
        expect(w).toEqual({ start: t - seconds * 1000, end: t });
        expect(nextPeriodStart({ rolling_seconds: seconds }, t)).toBe(t);
      }),
    );
    expect(periodWindow({ rolling_seconds: 60 }, 1_000_000)).toEqual({ start: 940_000, end: 1_000_000 });
  });
});

describe("inputs", () => {
  it("isValidTimeZone accepts IANA names (any case, aliases) and refuses the rest", () => {
    for (const zone of [
      "UTC",
      "Etc/UTC",
      "America/New_York",
      "america/new_york",
      "US/Eastern",
      "Asia/Kathmandu",
    ]) {
      expect(isValidTimeZone(zone), zone).toBe(true);
    }
    for (const zone of [
      "",
      "Mars/Olympus",
      "America/New York",
      "America/New_York ",
      "New_York",
      "EST5EDT6",
    ]) {
      expect(isValidTimeZone(zone), zone).toBe(false);
    }
  });

  it("canonicalTimeZone names the zone Intl resolves to", () => {
    expect(canonicalTimeZone("US/Eastern")).toBe("America/New_York");
    expect(canonicalTimeZone("Etc/UTC")).toBe("UTC");
    expect(canonicalTimeZone("Mars/Olympus")).toBeNull();
  });

  it("refuses unknown zones, bad instants and bad rolling periods with RangeError", () => {
    const t = Date.UTC(2026, 0, 1);
    expect(() => periodWindow("day", t, { timezone: "Mars/Olympus" })).toThrow(RangeError);
    expect(() => periodWindow("day", t, { timezone: "" })).toThrow(RangeError);
    expect(() => periodWindow("day", Number.NaN)).toThrow(RangeError);
    expect(() => periodWindow("day", INSTANT_MAX_MS + 1)).toThrow(RangeError);
    expect(() => periodWindow("month", t, { billingAnchor: Number.POSITIVE_INFINITY })).toThrow(RangeError);
    expect(() => periodWindow("year" as Period, t)).toThrow(RangeError);
    for (const seconds of [0, -5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => periodWindow({ rolling_seconds: seconds }, t), String(seconds)).toThrow(RangeError);
    }
  });

  it("works at the ends of the Date range, in UTC and in a zone", () => {
    for (const t of [INSTANT_MIN_MS, INSTANT_MAX_MS]) {
      for (const unit of UNITS) {
        for (const timezone of ["UTC", "America/New_York"]) {
          const w = periodWindow(unit, t, { timezone });
          expect(w.start, `${unit} ${timezone} ${t}`).toBeLessThanOrEqual(t);
          expect(w.end!, `${unit} ${timezone} ${t}`).toBeGreaterThan(t);
        }
      }
    }
  });
});
