/**
 * Billing cycles over long walks (issue #12). period.test.ts checks each instant's anchored window
 * against a reference; this file checks sequences of cycles: walking from any instant through 25
 * monthly (or 40 weekly) cycles, in zones with DST, the cycles tile time with no gap or overlap, every
 * instant of the walk lies in exactly one of them, the 31st rule never drifts (after a short month the
 * cycle returns to the anchor's day), a cycle's length is its calendar days minus the zone's offset
 * change, and two anchors that name the same day and time of the cycle give the same cycles.
 * Local dates come from Intl.formatToParts, never from the module's own calendar code.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { clearPeriodCache, periodWindow } from "../src/period/index.js";

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const WEEK = 7 * DAY;

const ZONES = [
  "UTC",
  "America/New_York",
  "Europe/Berlin",
  "Australia/Lord_Howe",
  "America/Santiago",
  "Asia/Kolkata",
  "Pacific/Chatham",
] as const;

const utc = (y: number, mo: number, d: number, h = 0, mi = 0) => Date.UTC(y, mo - 1, d, h, mi);
const iso = (t: number) => new Date(t).toISOString();

interface Local {
  year: number;
  month: number;
  day: number;
  /** Days since 1970-01-01 of the local date. */
  dayNum: number;
  /** Milliseconds since local midnight. */
  tod: number;
  /** Local wall time minus the instant. */
  offset: number;
}

const formats = new Map<string, Intl.DateTimeFormat>();
function local(zone: string, t: number): Local {
  let f = formats.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formats.set(zone, f);
  }
  const p: Record<string, string> = {};
  for (const part of f.formatToParts(t)) p[part.type] = part.value;
  const year = Number(p.year);
  const dayNum = Math.round(Date.UTC(year, Number(p.month) - 1, Number(p.day)) / DAY);
  const tod =
    Number(p.hour) * HOUR +
    Number(p.minute) * MINUTE +
    Number(p.second) * 1000 +
    (((t % 1000) + 1000) % 1000);
  return { year, month: Number(p.month), day: Number(p.day), dayNum, tod, offset: dayNum * DAY + tod - t };
}

const daysIn = (year: number, month: number) => new Date(Date.UTC(year, month, 0)).getUTCDate();

/** Whether the zone's offset is the same an hour either side of t (no DST change near it). */
const steady = (zone: string, t: number) =>
  local(zone, t - 2 * HOUR).offset === local(zone, t).offset &&
  local(zone, t + 2 * HOUR).offset === local(zone, t).offset;

/** Anchors on whole minutes, 2000–2035; days 28–31 are drawn often, for the 31st rule. */
const anchorArb = fc.oneof(
  fc.integer({ min: utc(2000, 1, 1), max: utc(2035, 1, 1) }).map((t) => Math.floor(t / MINUTE) * MINUTE),
  fc
    .record({
      year: fc.integer({ min: 2000, max: 2034 }),
      month: fc.constantFrom(1, 3, 5, 7, 8, 10, 12),
      day: fc.integer({ min: 28, max: 31 }),
      minute: fc.integer({ min: 0, max: 24 * 60 - 1 }),
    })
    .map(({ year, month, day, minute }) => utc(year, month, day) + minute * MINUTE),
);
const startArb = fc.integer({ min: utc(2019, 1, 1), max: utc(2031, 1, 1) });

/** `n` consecutive cycles from the one containing `t`, each reached from the previous one's end. */
function walk(unit: "week" | "month", t: number, n: number, zone: string, anchor: number) {
  const opts = { timezone: zone, billingAnchor: anchor };
  const cycles: { start: number; end: number }[] = [];
  let at = t;
  for (let i = 0; i < n; i++) {
    const w = periodWindow(unit, at, opts);
    cycles.push({ start: w.start, end: w.end as number });
    at = w.end as number;
  }
  return cycles;
}

describe("monthly billing cycles, walked", () => {
  it("tile time: contiguous, and every instant in the walk lies in exactly one cycle", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ZONES),
        anchorArb,
        startArb,
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 5, maxLength: 5 }),
        (zone, anchor, t, fractions) => {
          clearPeriodCache();
          const cycles = walk("month", t, 25, zone, anchor);
          expect(cycles[0]!.start).toBeLessThanOrEqual(t);
          for (let i = 1; i < cycles.length; i++) expect(cycles[i]!.start).toBe(cycles[i - 1]!.end);
          const from = cycles[0]!.start;
          const to = cycles[cycles.length - 1]!.end;
          for (const f of fractions) {
            const u = Math.min(to - 1, from + Math.floor(f * (to - from)));
            const holding = cycles.filter((c) => c.start <= u && u < c.end);
            expect(holding.length, `${zone} anchor=${iso(anchor)} u=${iso(u)}`).toBe(1);
            // ...and the window asked for directly, from a cold cache, is that cycle.
            clearPeriodCache();
            expect(periodWindow("month", u, { timezone: zone, billingAnchor: anchor })).toEqual(holding[0]);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it("the 31st rule never drifts: each cycle starts on min(anchor's day, days in month) at the anchor's time", () => {
    fc.assert(
      fc.property(fc.constantFrom(...ZONES), anchorArb, startArb, (zone, anchor, t) => {
        clearPeriodCache();
        const a = local(zone, anchor);
        const cycles = walk("month", t, 25, zone, anchor);
        let month = -1;
        for (const c of cycles) {
          const s = local(zone, c.start);
          const where = `${zone} anchor=${iso(anchor)} start=${iso(c.start)}`;
          // One cycle per calendar month, in order.
          const label = s.year * 12 + s.month;
          if (month !== -1) expect(label, where).toBe(month + 1);
          month = label;
          if (!steady(zone, c.start) || !steady(zone, anchor)) continue; // DST: see period.test.ts
          expect(s.day, where).toBe(Math.min(a.day, daysIn(s.year, s.month)));
          expect(s.tod, where).toBe(a.tod);
        }
      }),
      { numRuns: 80 },
    );
  });

  it("a cycle lasts its calendar days, minus the hour DST takes (or plus the hour it gives back)", () => {
    fc.assert(
      fc.property(fc.constantFrom(...ZONES), anchorArb, startArb, (zone, anchor, t) => {
        clearPeriodCache();
        for (const c of walk("month", t, 13, zone, anchor)) {
          if (!steady(zone, c.start) || !steady(zone, c.end)) continue;
          const s = local(zone, c.start);
          const e = local(zone, c.end);
          const where = `${zone} anchor=${iso(anchor)} [${iso(c.start)}, ${iso(c.end)})`;
          expect(s.tod, where).toBe(e.tod);
          const calendarDays = e.dayNum - s.dayNum;
          expect(calendarDays, where).toBeGreaterThanOrEqual(28);
          expect(calendarDays, where).toBeLessThanOrEqual(31);
          expect(c.end - c.start, where).toBe(calendarDays * DAY - (e.offset - s.offset));
        }
      }),
      { numRuns: 80 },
    );
  });

  it("12 cycles start in every calendar year", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ZONES),
        anchorArb,
        fc.integer({ min: 2020, max: 2029 }),
        (zone, anchor, year) => {
          clearPeriodCache();
          const cycles = walk("month", utc(year - 1, 12, 1), 15, zone, anchor);
          const startsIn = cycles.filter((c) => local(zone, c.start).year === year).length;
          expect(startsIn).toBe(12);
        },
      ),
      { numRuns: 80 },
    );
  });

  it("an anchor is a day and time of the cycle: the same local day and time in another month gives the same cycles", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ZONES),
        fc.integer({ min: 1, max: 28 }),
        fc.integer({ min: 0, max: 24 * 60 - 1 }),
        fc.integer({ min: 2001, max: 2030 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 2001, max: 2030 }),
        fc.integer({ min: 1, max: 12 }),
        startArb,
        (zone, day, minute, y1, m1, y2, m2, t) => {
          // The instants at which the zone's clock shows that day and time (UTC minus the offset).
          const at = (y: number, m: number) => {
            const wall = utc(y, m, day) + minute * MINUTE;
            let u = wall - local(zone, wall).offset;
            u = wall - local(zone, u).offset;
            return u;
          };
          const a1 = at(y1, m1);
          const a2 = at(y2, m2);
          fc.pre(steady(zone, a1) && steady(zone, a2));
          clearPeriodCache();
          expect(walk("month", t, 6, zone, a1)).toEqual(walk("month", t, 6, zone, a2));
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe("weekly billing cycles, walked", () => {
  it("tile time; each starts on the anchor's weekday and time; a week is 7 days give or take DST", () => {
    fc.assert(
      fc.property(fc.constantFrom(...ZONES), anchorArb, startArb, (zone, anchor, t) => {
        clearPeriodCache();
        const a = local(zone, anchor);
        const cycles = walk("week", t, 40, zone, anchor);
        for (let i = 0; i < cycles.length; i++) {
          const c = cycles[i]!;
          if (i > 0) expect(c.start).toBe(cycles[i - 1]!.end);
          if (!steady(zone, c.start) || !steady(zone, c.end) || !steady(zone, anchor)) continue;
          const s = local(zone, c.start);
          const e = local(zone, c.end);
          const where = `${zone} anchor=${iso(anchor)} [${iso(c.start)}, ${iso(c.end)})`;
          expect((((s.dayNum - a.dayNum) % 7) + 7) % 7, where).toBe(0);
          expect(s.tod, where).toBe(a.tod);
          expect(c.end - c.start, where).toBe(WEEK - (e.offset - s.offset));
        }
      }),
      { numRuns: 50 },
    );
  });
});

describe("DST at the anchor's time, in the customer's zone", () => {
  it("New York, anchor on the 8th at 02:30: March 2026's cycle starts at 03:00 EDT (02:30 does not exist), 23 h short", () => {
    const NY = "America/New_York";
    const anchor = utc(2026, 1, 8, 7, 30); // 2026-01-08 02:30 EST
    const march = periodWindow("month", utc(2026, 3, 20), { timezone: NY, billingAnchor: anchor });
    expect(iso(march.start)).toBe("2026-03-08T07:00:00.000Z"); // 03:00 EDT, the end of the gap
    expect(iso(march.end as number)).toBe("2026-04-08T06:30:00.000Z"); // 02:30 EDT
    const feb = periodWindow("month", utc(2026, 2, 20), { timezone: NY, billingAnchor: anchor });
    expect(feb.end).toBe(march.start);
    expect(iso(feb.start)).toBe("2026-02-08T07:30:00.000Z");
  });

  it("Berlin, anchor on the 25th at 02:30: October 2026's fall-back repeats 02:30, the cycle starts at its first occurrence", () => {
    const BER = "Europe/Berlin";
    const anchor = utc(2026, 1, 25, 1, 30); // 2026-01-25 02:30 CET
    const oct = periodWindow("month", utc(2026, 10, 26), { timezone: BER, billingAnchor: anchor });
    expect(iso(oct.start)).toBe("2026-10-25T00:30:00.000Z"); // 02:30 CEST, the first of two
    expect(iso(oct.end as number)).toBe("2026-11-25T01:30:00.000Z"); // 02:30 CET
    expect((oct.end as number) - oct.start).toBe(31 * DAY + HOUR);
  });
});
