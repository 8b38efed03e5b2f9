/**
 * Calendar windows in IANA zones and billing cycles. The expectations come from Intl's
 * formatToParts (a different Intl API than the implementation's offset look-up) and from plain
 * Date arithmetic, never from the module's own calendar code.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type CalendarUnit,
  clearPeriodCache,
  nextPeriodStart,
  type PeriodOptions,
  type PeriodWindow,
  periodWindow,
} from "../src/period/index.js";

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const WEEK = 7 * DAY;
/** Every offset and transition of the zones below since 1990 is a multiple of 15 minutes. */
const GRID = 15 * MINUTE;

const ZONES = [
  "UTC",
  "America/New_York",
  "Europe/Berlin",
  "Asia/Kolkata",
  "Australia/Lord_Howe",
  "America/Santiago",
  "Pacific/Chatham",
  "Asia/Kathmandu",
] as const;
const UNITS: CalendarUnit[] = ["hour", "day", "week", "month"];
const NY = "America/New_York";

const utc = (y: number, mo: number, d: number, h = 0, mi = 0) => Date.UTC(y, mo - 1, d, h, mi);
const iso = (t: number) => new Date(t).toISOString();

/** The computation itself, not a remembered window. */
function fresh(period: CalendarUnit, t: number, opts?: PeriodOptions): { start: number; end: number } {
  clearPeriodCache();
  const w = periodWindow(period, t, opts);
  if (w.end === null) throw new Error("calendar window without end");
  return { start: w.start, end: w.end };
}

// ---------------------------------------------------------------------------------------------
// Reference: local date and time by Intl.formatToParts, labels by Date arithmetic.

interface Local {
  year: number;
  month: number;
  day: number;
  weekday: string;
  /** Days since 1970-01-01 of the local date. */
  dayNum: number;
  /** Milliseconds since local midnight. */
  tod: number;
  /** Local wall time minus the instant. */
  offset: number;
}

const partsFormats = new Map<string, Intl.DateTimeFormat>();
function local(zone: string, t: number): Local {
  let format = partsFormats.get(zone);
  if (format === undefined) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      era: "short",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      weekday: "short",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    partsFormats.set(zone, format);
  }
  const p: Record<string, string> = {};
  for (const part of format.formatToParts(t)) p[part.type] = part.value;
  const y = Number(p.year);
  const year = p.era === "BC" ? 1 - y : y;
  const date = new Date(0);
  date.setUTCFullYear(year, Number(p.month) - 1, Number(p.day));
  const dayNum = Math.round(date.getTime() / DAY);
  const ms = t - Math.floor(t / 1000) * 1000;
  const tod = Number(p.hour) * HOUR + Number(p.minute) * MINUTE + Number(p.second) * 1000 + ms;
  return {
    year,
    month: Number(p.month),
    day: Number(p.day),
    weekday: p.weekday ?? "",
    dayNum,
    tod,
    offset: dayNum * DAY + tod - t,
  };
}

/** Days in a month, by Date: day 0 of the next month is the last day of this one. */
function daysIn(year: number, month: number): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month, 0);
  return d.getUTCDate();
}

type Label = (l: Local) => number;
const LABELS: Record<CalendarUnit, Label> = {
  hour: (l) => l.dayNum * 24 + Math.floor(l.tod / HOUR),
  day: (l) => l.dayNum,
  // 1970-01-05 (day 4) was a Monday.
  week: (l) => Math.floor((l.dayNum - 4) / 7),
  month: (l) => l.year * 12 + l.month - 1,
};

function anchoredMonthLabel(anchor: Local): Label {
  return (l) => {
    const k = l.year * 12 + l.month - 1;
    const startDay = Math.min(anchor.day, daysIn(l.year, l.month));
    return l.day < startDay || (l.day === startDay && l.tod < anchor.tod) ? k - 1 : k;
  };
}

function anchoredWeekLabel(anchor: Local): Label {
  const anchorWall = anchor.dayNum * DAY + anchor.tod;
  return (l) => Math.floor((l.dayNum * DAY + l.tod - anchorWall) / WEEK);
}

/**
 * The label of the window an instant belongs to: the highest label the local clock has shown so
 * far (after a fall-back the clock repeats an earlier label, but the later window is already open).
 * Fall-backs in these zones are at most an hour, so the last three hours on the grid suffice.
 */
function highWater(zone: string, label: Label, u: number): number {
  let best = label(local(zone, u));
  const top = Math.floor(u / GRID) * GRID;
  for (let g = top; g >= top - 3 * HOUR; g -= GRID) best = Math.max(best, label(local(zone, g)));
  return best;
}

/**
 * Checks [start, end) against the reference: both on the grid, the window's label is reached
 * exactly at start (and not one grid step before), and the next label exactly at end.
 */
function expectMatchesReference(zone: string, label: Label, t: number, w: { start: number; end: number }) {
  const where = `${zone} t=${iso(t)} window=[${iso(w.start)}, ${iso(w.end)})`;
  expect(w.start % GRID, where).toBe(0);
  expect(w.end % GRID, where).toBe(0);
  const k = highWater(zone, label, t);
  expect(highWater(zone, label, w.start), `label at start, ${where}`).toBe(k);
  expect(highWater(zone, label, w.start - GRID), `label before start, ${where}`).toBeLessThan(k);
  expect(highWater(zone, label, w.end - GRID), `label before end, ${where}`).toBe(k);
  expect(highWater(zone, label, w.end), `label at end, ${where}`).toBeGreaterThan(k);
}

/** Offset transitions of `zone` in [from, to), found by daily sampling and bisection on seconds. */
function transitions(zone: string, from: number, to: number): number[] {
  const found: number[] = [];
  const offset = (u: number) => local(zone, u).offset - (u - Math.floor(u / 1000) * 1000);
  for (let a = from; a < to; a += DAY) {
    const b = a + DAY;
    const oa = offset(a);
    if (offset(b) === oa) continue;
    let lo = a / 1000;
    let hi = b / 1000;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (offset(mid * 1000) === oa) lo = mid;
      else hi = mid;
    }
    found.push(hi * 1000);
  }
  return found;
}

const REFERENCE_FROM = utc(1990, 1, 1);
const REFERENCE_TO = utc(2060, 1, 1);
const TRANSITIONS: Record<string, number[]> = {};
for (const zone of ZONES) TRANSITIONS[zone] = transitions(zone, utc(2020, 1, 1), utc(2031, 1, 1));

const zoneArb = fc.constantFrom(...ZONES);
const unitArb = fc.constantFrom(...UNITS);
/** Wide range: local mean time before the 1900s (offsets in seconds) to far-future rules. */
const wideInstant = fc.integer({ min: utc(1850, 1, 1), max: utc(2200, 1, 1) });
/** Within three days of one of the zone's DST transitions in 2020–2030. */
const nearTransition = (zone: string) => {
  const list = TRANSITIONS[zone] ?? [];
  if (list.length === 0) return fc.integer({ min: utc(2020, 1, 1), max: utc(2031, 1, 1) });
  return fc
    .tuple(fc.constantFrom(...list), fc.integer({ min: -3 * DAY, max: 3 * DAY }))
    .map(([at, delta]) => at + delta);
};
/**
 * Within the repeated wall times after one of the zone's fall-backs in 2020–2030: there the local
 * clock may show a label whose window has closed already (Chatham's 02:45 after 03:00 was shown).
 */
const afterFallBack = (zone: string) => {
  const list = (TRANSITIONS[zone] ?? []).filter((at) => local(zone, at).offset < local(zone, at - 1).offset);
  if (list.length === 0) return fc.integer({ min: utc(2020, 1, 1), max: utc(2031, 1, 1) });
  return fc
    .tuple(fc.constantFrom(...list), fc.integer({ min: 0, max: HOUR - 1 }))
    .map(([at, delta]) => at + delta);
};
const zonedInstant = zoneArb.chain((zone) =>
  fc.tuple(
    fc.constant(zone),
    fc.oneof(wideInstant, nearTransition(zone), nearTransition(zone), afterFallBack(zone)),
  ),
);
const referenceInstant = zoneArb.chain((zone) =>
  fc.tuple(
    fc.constant(zone),
    fc.oneof(fc.integer({ min: REFERENCE_FROM, max: REFERENCE_TO }), nearTransition(zone)),
  ),
);

describe("the reference helpers see DST", () => {
  it("finds both 2026 transitions in New York and none in Kolkata", () => {
    const ny = transitions(NY, utc(2026, 1, 1), utc(2027, 1, 1));
    expect(ny.map(iso)).toEqual(["2026-03-08T07:00:00.000Z", "2026-11-01T06:00:00.000Z"]);
    expect(transitions("Asia/Kolkata", utc(2026, 1, 1), utc(2027, 1, 1))).toEqual([]);
    expect(TRANSITIONS["Australia/Lord_Howe"]?.length).toBe(22);
  });
});

describe("every instant lies in exactly one window, and windows are contiguous", () => {
  it.each(UNITS)("%s, any zone, any instant (1850–2200, and around DST transitions)", (unit) => {
    fc.assert(
      fc.property(zonedInstant, ([zone, t]) => {
        const opts = { timezone: zone };
        const w = fresh(unit, t, opts);
        const where = `${unit} ${zone} t=${iso(t)} window=[${iso(w.start)}, ${iso(w.end)})`;
        expect(w.start, where).toBeLessThanOrEqual(t);
        expect(w.end, where).toBeGreaterThan(t);
        expect(fresh(unit, w.start, opts), where).toEqual(w);
        expect(fresh(unit, w.end - 1, opts), where).toEqual(w);
        expect(fresh(unit, w.end, opts).start, where).toBe(w.end);
        expect(fresh(unit, w.start - 1, opts).end, where).toBe(w.start);
        const length = w.end - w.start;
        const [min, max] = {
          hour: [1, 2 * HOUR],
          day: [22 * HOUR, 26 * HOUR],
          week: [WEEK - 2 * HOUR, WEEK + 2 * HOUR],
          month: [28 * DAY - 2 * HOUR, 31 * DAY + 2 * HOUR],
        }[unit];
        expect(length, where).toBeGreaterThanOrEqual(min!);
        expect(length, where).toBeLessThanOrEqual(max!);
      }),
      { numRuns: 150 },
    );
  });

  it("resetAt is the window's end", () => {
    fc.assert(
      fc.property(zonedInstant, unitArb, ([zone, t], unit) => {
        expect(nextPeriodStart(unit, t, { timezone: zone })).toBe(fresh(unit, t, { timezone: zone }).end);
      }),
      { numRuns: 100 },
    );
  });

  it("remembered windows equal fresh ones at and around the remembered boundaries", () => {
    fc.assert(
      fc.property(zonedInstant, unitArb, fc.option(anyAnchor, { nil: null }), ([zone, t], unit, anchor) => {
        const opts = { timezone: zone, billingAnchor: anchor };
        clearPeriodCache();
        const w = periodWindow(unit, t, opts);
        const probes = [w.end!, w.start - 1, w.end! - 1, w.start, w.end! + 1, t, w.start + 1];
        const remembered = probes.map((u) => periodWindow(unit, u, opts));
        probes.forEach((u, i) => {
          expect(remembered[i], `${unit} ${zone} ${iso(u)}`).toEqual(fresh(unit, u, opts));
        });
      }),
      { numRuns: 100 },
    );
  });

  it.each(ZONES)(
    "walking windows end to end over three years with a warm cache matches fresh computation (%s)",
    (zone) => {
      const walks: [CalendarUnit, PeriodOptions][] = [
        ["day", { timezone: zone }],
        ["week", { timezone: zone }],
        ["month", { timezone: zone }],
        ["month", { timezone: zone, billingAnchor: utc(2019, 1, 31, 1, 30) }],
      ];
      const remembered: [CalendarUnit, PeriodOptions, PeriodWindow][] = [];
      clearPeriodCache();
      for (const [unit, opts] of walks) {
        let w = periodWindow(unit, utc(2019, 6, 1), opts);
        while (w.start < utc(2022, 6, 1)) {
          remembered.push([unit, opts, w]);
          const next = periodWindow(unit, w.end!, opts);
          expect(next.start, `${unit} after ${iso(w.start)}`).toBe(w.end);
          w = next;
        }
      }
      for (const [unit, opts, w] of remembered)
        expect(fresh(unit, w.start, opts), `${unit} ${iso(w.start)}`).toEqual(w);
    },
  );

  it("remembered windows equal fresh ones, whatever order instants come in", () => {
    const call = fc.record({
      zone: zoneArb,
      unit: unitArb,
      t: fc.integer({ min: utc(2025, 10, 20), max: utc(2026, 4, 10) }),
      anchor: fc.option(fc.constantFrom(utc(2025, 1, 31, 6, 30), utc(2024, 3, 10, 7)), { nil: null }),
    });
    fc.assert(
      fc.property(fc.array(call, { minLength: 1, maxLength: 40 }), (calls) => {
        clearPeriodCache();
        const remembered = calls.map((c) =>
          periodWindow(c.unit, c.t, { timezone: c.zone, billingAnchor: c.anchor }),
        );
        calls.forEach((c, i) => {
          expect(remembered[i]).toEqual(fresh(c.unit, c.t, { timezone: c.zone, billingAnchor: c.anchor }));
        });
      }),
      { numRuns: 60 },
    );
  });
});

describe("windows agree with an independent reference (Intl.formatToParts)", () => {
  it.each(UNITS)("%s windows, any zone, 1990–2060 and around DST transitions", (unit) => {
    fc.assert(
      fc.property(referenceInstant, ([zone, t]) => {
        expectMatchesReference(zone, LABELS[unit], t, fresh(unit, t, { timezone: zone }));
      }),
      { numRuns: unit === "hour" ? 120 : 60 },
    );
  });

  it("local midnight found by scanning every 15 minutes matches the day window", () => {
    fc.assert(
      fc.property(referenceInstant, ([zone, t]) => {
        // Walk two days either side, keeping the highest local date seen: the window of t's date
        // starts where that date is first reached and ends where a later one is.
        const top = Math.floor(t / GRID) * GRID;
        let high = Number.NEGATIVE_INFINITY;
        const highs: [number, number][] = [];
        for (let g = top - 2 * DAY; g <= top + 2 * DAY; g += GRID) {
          high = Math.max(high, local(zone, g).dayNum);
          highs.push([g, high]);
        }
        const mine = highs.find(([g]) => g === top)![1];
        const start = highs.find(([, h]) => h >= mine)![0];
        const end = highs.find(([, h]) => h > mine)![0];
        expect(fresh("day", t, { timezone: zone }), `${zone} ${iso(t)}`).toEqual({ start, end });
      }),
      { numRuns: 40 },
    );
  });

  it("week windows start on Monday at local 00:00 (or the first instant after a skipped midnight)", () => {
    fc.assert(
      fc.property(referenceInstant, ([zone, t]) => {
        const w = fresh("week", t, { timezone: zone });
        const first = local(zone, w.start);
        const before = local(zone, w.start - 1);
        const where = `${zone} ${iso(w.start)}`;
        expect(first.weekday, where).toBe("Mon");
        expect(before.weekday, where).toBe("Sun");
        if (first.tod !== 0)
          expect(before.offset, `${where} starts off midnight without a gap`).not.toBe(first.offset);
      }),
      { numRuns: 100 },
    );
  });

  it("month windows start on the local 1st at 00:00 (or the first instant after a skipped midnight)", () => {
    fc.assert(
      fc.property(referenceInstant, ([zone, t]) => {
        const w = fresh("month", t, { timezone: zone });
        const first = local(zone, w.start);
        const last = local(zone, w.end - 1);
        const before = local(zone, w.start - 1);
        const where = `${zone} ${iso(w.start)}`;
        expect(first.day, where).toBe(1);
        expect(before.day, where).toBe(daysIn(before.year, before.month));
        expect(last.day, where).toBe(daysIn(last.year, last.month));
        expect(last.month, where).toBe(first.month);
        if (first.tod !== 0)
          expect(before.offset, `${where} starts off midnight without a gap`).not.toBe(first.offset);
      }),
      { numRuns: 100 },
    );
  });
});

describe("DST in New York", () => {
  const day = (y: number, m: number, d: number) => fresh("day", utc(y, m, d, 17), { timezone: NY });

  it("2026-03-08 (spring forward) is 23 hours, local midnight to local midnight", () => {
    const w = day(2026, 3, 8);
    expect([iso(w.start), iso(w.end)]).toEqual(["2026-03-08T05:00:00.000Z", "2026-03-09T04:00:00.000Z"]);
    expect(w.end - w.start).toBe(23 * HOUR);
  });

  it("2026-11-01 (fall back) is 25 hours", () => {
    const w = day(2026, 11, 1);
    expect([iso(w.start), iso(w.end)]).toEqual(["2026-11-01T04:00:00.000Z", "2026-11-02T05:00:00.000Z"]);
    expect(w.end - w.start).toBe(25 * HOUR);
  });

  it("the days around them are 24 hours", () => {
    for (const [m, d] of [
      [3, 7],
      [3, 9],
      [10, 31],
      [11, 2],
    ] as const) {
      expect(day(2026, m, d).end - day(2026, m, d).start).toBe(24 * HOUR);
    }
  });

  it("every day of 2020–2030 is 24 hours except the second Sunday of March (23) and first of November (25)", () => {
    const nthSunday = (y: number, month: number, n: number) => {
      const first = new Date(Date.UTC(y, month - 1, 1)).getUTCDay();
      return 1 + ((7 - first) % 7) + 7 * (n - 1);
    };
    let t = utc(2020, 1, 1, 12);
    while (t < utc(2031, 1, 1)) {
      const w = fresh("day", t, { timezone: NY });
      const l = local(NY, w.start);
      const expected =
        l.month === 3 && l.day === nthSunday(l.year, 3, 2)
          ? 23
          : l.month === 11 && l.day === nthSunday(l.year, 11, 1)
            ? 25
            : 24;
      expect(w.end - w.start, `${l.year}-${l.month}-${l.day}`).toBe(expected * HOUR);
      t = w.end + 12 * HOUR;
    }
  });

  it("the repeated hour 01:00–02:00 of 2026-11-01 is one two-hour window (the clock's hour 1)", () => {
    const first = fresh("hour", utc(2026, 11, 1, 5, 30), { timezone: NY }); // 01:30 EDT
    const second = fresh("hour", utc(2026, 11, 1, 6, 30), { timezone: NY }); // 01:30 EST
    expect(second).toEqual(first);
    expect([iso(first.start), iso(first.end)]).toEqual([
      "2026-11-01T05:00:00.000Z",
      "2026-11-01T07:00:00.000Z",
    ]);
  });

  it("the skipped hour 02:00–03:00 of 2026-03-08 has no window: 01:00 is followed by 03:00", () => {
    const w = fresh("hour", utc(2026, 3, 8, 6, 59), { timezone: NY }); // 01:59 EST
    expect([iso(w.start), iso(w.end)]).toEqual(["2026-03-08T06:00:00.000Z", "2026-03-08T07:00:00.000Z"]);
    expect(fresh("hour", w.end, { timezone: NY }).end - w.end).toBe(HOUR);
  });
});

describe("zones with unusual DST", () => {
  it("Lord Howe's half-hour DST: 24.5-hour and 23.5-hour days in 2026", () => {
    const zone = "Australia/Lord_Howe";
    const ends = fresh("day", utc(2026, 4, 5, 0), { timezone: zone });
    const starts = fresh("day", utc(2026, 10, 4, 0), { timezone: zone });
    expect(ends.end - ends.start).toBe(24.5 * HOUR);
    expect(starts.end - starts.start).toBe(23.5 * HOUR);
  });

  it("Chatham falls back from 03:45 to 02:45: the repeated 02:45–03:00 stays in hour 3's window", () => {
    const zone = "Pacific/Chatham";
    // 2026-04-05 03:45 +13:45 is 2026-04-04T14:00Z; clocks then show 02:45 (+12:45).
    const w = fresh("hour", utc(2026, 4, 4, 14, 5), { timezone: zone });
    expect([iso(w.start), iso(w.end)]).toEqual(["2026-04-04T13:15:00.000Z", "2026-04-04T15:15:00.000Z"]);
    expect(local(zone, utc(2026, 4, 4, 14, 5)).tod).toBe(2 * HOUR + 50 * MINUTE);
    expect(fresh("hour", w.start - 1, { timezone: zone }).end).toBe(w.start);
  });

  it("Santiago skips midnight in September: the day starts at 01:00, 23 hours", () => {
    const zone = "America/Santiago";
    const w = fresh("day", utc(2026, 9, 6, 15), { timezone: zone });
    expect(iso(w.start)).toBe("2026-09-06T04:00:00.000Z");
    expect(local(zone, w.start).tod).toBe(HOUR);
    expect(w.end - w.start).toBe(23 * HOUR);
  });

  it("Santiago repeats 23:00 on the Saturday in April: that day is 25 hours, the repeat belongs to it", () => {
    const zone = "America/Santiago";
    const w = fresh("day", utc(2026, 4, 4, 15), { timezone: zone });
    expect([iso(w.start), iso(w.end)]).toEqual(["2026-04-04T03:00:00.000Z", "2026-04-05T04:00:00.000Z"]);
    // Clocks went from Saturday 24:00 (-03) back to Saturday 23:00 (-04): 03:30Z is the second
    // Saturday 23:30, and Sunday starts at 04:00Z.
    expect(local(zone, utc(2026, 4, 5, 3, 30)).day).toBe(4);
    expect(fresh("day", utc(2026, 4, 5, 3, 30), { timezone: zone })).toEqual(w);
  });

  it("Havana (2026-03-08) and Beirut (2022-03-27) skip midnight: the day starts at 01:00", () => {
    for (const [zone, t, start] of [
      ["America/Havana", utc(2026, 3, 8, 12), "2026-03-08T05:00:00.000Z"],
      ["Asia/Beirut", utc(2022, 3, 27, 12), "2022-03-26T22:00:00.000Z"],
    ] as const) {
      const w = fresh("day", t, { timezone: zone });
      expect(iso(w.start), zone).toBe(start);
      expect(local(zone, w.start).tod, zone).toBe(HOUR);
      expect(local(zone, w.start - 1).tod, zone).toBe(DAY - 1);
      expect(w.end - w.start, zone).toBe(23 * HOUR);
    }
  });

  it("Samoa skipped 2011-12-30 entirely: Dec 29 is followed by Dec 31", () => {
    const zone = "Pacific/Apia";
    const dec29 = fresh("day", utc(2011, 12, 29, 12), { timezone: zone });
    const dec31 = fresh("day", dec29.end, { timezone: zone });
    expect(local(zone, dec29.start).day).toBe(29);
    expect(local(zone, dec31.start).day).toBe(31);
    expect(dec31.start).toBe(dec29.end);
  });

  it("Kathmandu (+05:45) and Chatham (+13:45) weeks start at local Monday midnight", () => {
    expect(iso(fresh("week", utc(2026, 3, 11), { timezone: "Asia/Kathmandu" }).start)).toBe(
      "2026-03-08T18:15:00.000Z",
    );
    expect(iso(fresh("week", utc(2026, 1, 14), { timezone: "Pacific/Chatham" }).start)).toBe(
      "2026-01-11T10:15:00.000Z",
    );
  });
});

describe("month lengths and leap years", () => {
  const monthDays = (y: number, m: number, zone = "UTC") => {
    const w = fresh("month", utc(y, m, 15), { timezone: zone });
    return (w.end - w.start) / DAY;
  };

  it("February has 29 days in 2024 and 2000, 28 in 2026, 2100 and 1900", () => {
    for (const zone of ["UTC", "Europe/Berlin", "Asia/Kolkata"]) {
      expect(monthDays(2024, 2, zone)).toBe(29);
      expect(monthDays(2000, 2, zone)).toBe(29);
      expect(monthDays(2026, 2, zone)).toBe(28);
      expect(monthDays(2100, 2, zone)).toBe(28);
    }
    expect(monthDays(1900, 2)).toBe(28);
  });

  it("months of 30 and 31 days", () => {
    expect([1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12].map((m) => monthDays(2026, m))).toEqual([
      31, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31,
    ]);
  });

  it("a DST month in New York is a whole number of days give or take the hour", () => {
    const w = fresh("month", utc(2026, 3, 15), { timezone: NY });
    expect([iso(w.start), iso(w.end)]).toEqual(["2026-03-01T05:00:00.000Z", "2026-04-01T04:00:00.000Z"]);
  });
});

// ---------------------------------------------------------------------------------------------
// Billing cycles

const anchoredOpts = (zone: string, anchor: number): PeriodOptions => ({
  timezone: zone,
  billingAnchor: anchor,
});

/** Anchors at the end of a month (the 28th–31st), from `from` to `to` (years). */
const lateInMonth = (from: number, to: number) =>
  fc
    .record({
      y: fc.integer({ min: from, max: to - 1 }),
      m: fc.integer({ min: 1, max: 12 }),
      d: fc.integer({ min: 28, max: 31 }),
      ms: fc.integer({ min: 0, max: DAY - 1 }),
    })
    .map(({ y, m, d, ms }) => Date.UTC(y, m - 1, d) + ms);
/** Anchors anywhere (ms precision, local mean time included), half of them late in a month. */
const anyAnchor = fc.oneof(
  fc.integer({ min: utc(1900, 1, 1), max: utc(2100, 1, 1) }),
  lateInMonth(1900, 2100),
);
/**
 * Anchors on the 15-minute grid in 1990–2060, when every offset of these zones is a multiple of
 * 15 minutes: the reference's grid scan then sees the cycles' boundaries.
 */
const gridAnchor = fc
  .oneof(fc.integer({ min: REFERENCE_FROM, max: REFERENCE_TO }), lateInMonth(1990, 2060))
  .map((a) => Math.floor(a / GRID) * GRID);

describe("billing cycles", () => {
  it.each(["week", "month"] as const)("%s: every instant in exactly one cycle; cycles contiguous", (unit) => {
    fc.assert(
      fc.property(zonedInstant, anyAnchor, ([zone, t], anchor) => {
        const opts = anchoredOpts(zone, anchor);
        const w = fresh(unit, t, opts);
        const where = `${unit} ${zone} anchor=${iso(anchor)} t=${iso(t)} window=[${iso(w.start)}, ${iso(w.end)})`;
        expect(w.start, where).toBeLessThanOrEqual(t);
        expect(w.end, where).toBeGreaterThan(t);
        expect(fresh(unit, w.start, opts), where).toEqual(w);
        expect(fresh(unit, w.end - 1, opts), where).toEqual(w);
        expect(fresh(unit, w.end, opts).start, where).toBe(w.end);
        expect(fresh(unit, w.start - 1, opts).end, where).toBe(w.start);
      }),
      { numRuns: 150 },
    );
  });

  it("the anchor itself starts a cycle (when its local time is shown only once)", () => {
    fc.assert(
      fc.property(
        zoneArb,
        anyAnchor,
        fc.constantFrom("week", "month") as fc.Arbitrary<"week" | "month">,
        (zone, anchor, unit) => {
          const l = local(zone, anchor);
          // An anchor inside a repeated hour names a wall time whose first occurrence came earlier.
          fc.pre(
            local(zone, anchor - HOUR).offset === l.offset && local(zone, anchor + HOUR).offset === l.offset,
          );
          expect(fresh(unit, anchor, anchoredOpts(zone, anchor)).start).toBe(anchor);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("the 31st rule: a month cycle starts on min(anchor's day, days in month), at the anchor's time", () => {
    fc.assert(
      fc.property(zonedInstant, anyAnchor, ([zone, t], anchor) => {
        const a = local(zone, anchor);
        const w = fresh("month", t, anchoredOpts(zone, anchor));
        const first = local(zone, w.start);
        const where = `${zone} anchor=${iso(anchor)} (day ${a.day}) start=${iso(w.start)}`;
        expect(first.day, where).toBe(Math.min(a.day, daysIn(first.year, first.month)));
        if (first.tod !== a.tod) {
          // Only where the anchor's time was skipped: the cycle starts at the transition.
          expect(local(zone, w.start - 1).offset, where).not.toBe(first.offset);
          expect(first.tod, where).toBeGreaterThan(a.tod);
        }
        const next = local(zone, w.end);
        const monthsApart = next.year * 12 + next.month - (first.year * 12 + first.month);
        expect(monthsApart, where).toBe(1);
      }),
      { numRuns: 200 },
    );
  });

  it("a week cycle starts on the anchor's weekday at the anchor's time", () => {
    fc.assert(
      fc.property(zonedInstant, anyAnchor, ([zone, t], anchor) => {
        const a = local(zone, anchor);
        const w = fresh("week", t, anchoredOpts(zone, anchor));
        const first = local(zone, w.start);
        const where = `${zone} anchor=${iso(anchor)} start=${iso(w.start)}`;
        expect(first.weekday, where).toBe(a.weekday);
        if (first.tod !== a.tod) {
          expect(local(zone, w.start - 1).offset, where).not.toBe(first.offset);
          expect(first.tod, where).toBeGreaterThan(a.tod);
        }
      }),
      { numRuns: 150 },
    );
  });

  it.each(["week", "month"] as const)("%s cycles agree with the reference", (unit) => {
    fc.assert(
      fc.property(referenceInstant, gridAnchor, ([zone, t], anchor) => {
        const a = local(zone, anchor);
        const label = unit === "month" ? anchoredMonthLabel(a) : anchoredWeekLabel(a);
        expectMatchesReference(zone, label, t, fresh(unit, t, anchoredOpts(zone, anchor)));
      }),
      { numRuns: 50 },
    );
  });

  it("hour and day periods ignore the anchor", () => {
    fc.assert(
      fc.property(
        zonedInstant,
        anyAnchor,
        fc.constantFrom("hour", "day") as fc.Arbitrary<"hour" | "day">,
        ([zone, t], anchor, unit) => {
          expect(fresh(unit, t, anchoredOpts(zone, anchor))).toEqual(fresh(unit, t, { timezone: zone }));
        },
      ),
      { numRuns: 60 },
    );
  });

  it("Jan 31 anchor: Feb 28, Mar 31, Apr 30 (UTC), and Feb 29 in 2024, Feb 28 in 2100", () => {
    const anchor = utc(2026, 1, 31, 10);
    const cycles: string[] = [];
    let w = fresh("month", anchor, { billingAnchor: anchor });
    for (let i = 0; i < 4; i++) {
      cycles.push(iso(w.start));
      w = fresh("month", w.end, { billingAnchor: anchor });
    }
    expect(cycles).toEqual([
      "2026-01-31T10:00:00.000Z",
      "2026-02-28T10:00:00.000Z",
      "2026-03-31T10:00:00.000Z",
      "2026-04-30T10:00:00.000Z",
    ]);
    expect(iso(fresh("month", utc(2024, 3, 1), { billingAnchor: anchor }).start)).toBe(
      "2024-02-29T10:00:00.000Z",
    );
    expect(iso(fresh("month", utc(2100, 3, 1), { billingAnchor: anchor }).start)).toBe(
      "2100-02-28T10:00:00.000Z",
    );
    // An instant before the anchor's day of the month belongs to the previous month's cycle.
    expect(iso(fresh("month", utc(2026, 5, 30, 9), { billingAnchor: anchor }).start)).toBe(
      "2026-04-30T10:00:00.000Z",
    );
  });

  it("a 29th anchor: Feb 28 in common years, then back to the 29th", () => {
    const anchor = utc(2023, 1, 29);
    const feb = fresh("month", utc(2023, 3, 10), { billingAnchor: anchor });
    expect([iso(feb.start), iso(feb.end)]).toEqual(["2023-02-28T00:00:00.000Z", "2023-03-29T00:00:00.000Z"]);
  });

  it("the anchor's local day and time count, not UTC's (Jan 31 23:00 in Berlin is Feb 1 UTC-1h)", () => {
    const anchor = utc(2026, 1, 31, 22); // 23:00 on the 31st in Berlin
    const w = fresh("month", utc(2026, 3, 10), anchoredOpts("Europe/Berlin", anchor));
    expect([iso(w.start), iso(w.end)]).toEqual(["2026-02-28T22:00:00.000Z", "2026-03-31T21:00:00.000Z"]);
  });

  it("02:30 anchor in New York: on 2026-03-08 02:30 does not exist, the cycle starts at 03:00 EDT", () => {
    const anchor = utc(2026, 1, 8, 7, 30); // Thursday Jan 8, 02:30 EST
    const march = fresh("month", utc(2026, 3, 20), anchoredOpts(NY, anchor));
    expect([iso(march.start), iso(march.end)]).toEqual([
      "2026-03-08T07:00:00.000Z",
      "2026-04-08T06:30:00.000Z",
    ]);
    const february = fresh("month", utc(2026, 2, 20), anchoredOpts(NY, anchor));
    expect([iso(february.start), iso(february.end)]).toEqual([
      "2026-02-08T07:30:00.000Z",
      "2026-03-08T07:00:00.000Z",
    ]);

    const sunday = utc(2026, 3, 1, 7, 30); // Sunday Mar 1, 02:30 EST
    const week = fresh("week", utc(2026, 3, 10), anchoredOpts(NY, sunday));
    expect([iso(week.start), iso(week.end)]).toEqual([
      "2026-03-08T07:00:00.000Z",
      "2026-03-15T06:30:00.000Z",
    ]);
  });

  it("01:30 anchor in New York: on 2026-11-01 the cycle starts at the first 01:30 (EDT)", () => {
    const anchor = utc(2026, 10, 1, 5, 30); // Oct 1, 01:30 EDT
    const w = fresh("month", utc(2026, 11, 1, 6, 45), anchoredOpts(NY, anchor)); // 01:45 EST
    expect(iso(w.start)).toBe("2026-11-01T05:30:00.000Z");
    // An anchor given as the second 01:30 names the same wall time: its cycle began an hour earlier.
    // 01:05 EST comes after the cycle's first 01:15 (EDT): it belongs to the November cycle.
    const early = fresh("month", utc(2026, 11, 1, 6, 5), anchoredOpts(NY, utc(2026, 10, 1, 5, 15)));
    expect(iso(early.start)).toBe("2026-11-01T05:15:00.000Z");
    const second = utc(2026, 11, 1, 6, 30);
    expect(iso(fresh("month", second, anchoredOpts(NY, second)).start)).toBe("2026-11-01T05:30:00.000Z");
  });

  it("UTC spellings (and a zone that has been UTC since 1912) give the UTC windows", () => {
    // Abidjan kept local mean time (-00:16:08) until 1912.
    const since1913 = fc.integer({ min: utc(1913, 1, 1), max: utc(2200, 1, 1) });
    fc.assert(
      fc.property(since1913, fc.option(since1913, { nil: null }), unitArb, (t, anchor, unit) => {
        const expected = fresh(unit, t, { billingAnchor: anchor });
        for (const zone of ["Etc/UTC", "utc", "Etc/GMT", "Africa/Abidjan"]) {
          expect(fresh(unit, t, { timezone: zone, billingAnchor: anchor }), zone).toEqual(expected);
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe("windows handed out are read-only", () => {
  it("a remembered window cannot be changed by a caller", () => {
    clearPeriodCache();
    const w: PeriodWindow = periodWindow("day", utc(2026, 5, 1), { timezone: NY });
    expect(Object.isFrozen(w)).toBe(true);
  });
});
