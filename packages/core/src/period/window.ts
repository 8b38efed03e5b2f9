/**
 * The window of a limit's period that contains an instant: calendar periods in the customer's
 * time zone (optionally anchored to a billing date), all-time, and rolling windows.
 *
 * One rule places every calendar window, in every zone: a window of label k (an hour, a date, a
 * week, a month, a billing cycle) starts at the first instant the local clock shows k's start
 * (`firstInstantAtWall`) and ends where the next label's window starts. Because the boundaries
 * come from a monotonic rule, windows are contiguous and never overlap, whatever the zone's clock
 * does: a repeated hour after a fall-back belongs to the window already open; a skipped midnight
 * moves the start to the first instant after the gap. See README.md for the invariants.
 */
import { assert } from "../errors.js";
import {
  type CalendarUnit,
  DAY_MS,
  firstDayOfMonthIndex,
  HOUR_MS,
  MONDAY_EPOCH_MS,
  monthIndexOfDay,
  WEEK_MS,
} from "./calendar.js";
import {
  clearZoneCache,
  firstInstantAtWall,
  INSTANT_MAX_MS,
  INSTANT_MIN_MS,
  wallAt,
  type Zone,
  zoneOf,
} from "./zone.js";

/** A limit's period, as the API spells it. */
export type Period = CalendarUnit | "all_time" | { rolling_seconds: number };

export interface PeriodOptions {
  /**
   * IANA zone in which calendar periods begin.
   * @default "UTC"
   * @example "America/New_York"
   */
  timezone?: string | null;
  /**
   * Epoch ms. When set, `month` periods start every month at the anchor's local day-of-month and
   * time of day (on the last day of months too short for it), and `week` periods on the anchor's
   * local weekday and time. Other periods ignore it.
   * @default null
   */
  billingAnchor?: number | null;
}

/**
 * A window of a period. Calendar windows are half-open, `[start, end)`; all-time has `end: null`;
 * a rolling window is `(start, end]` (see `periodWindow`).
 */
export interface PeriodWindow {
  readonly start: number;
  readonly end: number | null;
}

/** Start of the `all_time` window: the earliest instant a Date can hold, so it contains every instant. */
export const ALL_TIME_START = INSTANT_MIN_MS;

/**
 * Anchored cycles remembered per zone and unit (one per distinct billing anchor). Past this many
 * the cache is emptied rather than grown.
 */
export const ANCHORED_CYCLES_CACHED_MAX = 4_096;
/** Zones whose windows are remembered; past this many the cache is emptied rather than grown. */
export const ZONE_WINDOWS_CACHED_MAX = 1_024;

const ALL_TIME_WINDOW: PeriodWindow = Object.freeze({ start: ALL_TIME_START, end: null });

/**
 * The window of `period` that contains instant `t` (epoch ms).
 *
 * - `hour`, `day`, `week` (Monday 00:00), `month` (1st 00:00): `[start, end)` in local time of
 *   `opts.timezone`, DST-correct (a New York day is 23 or 25 hours on transition days). A local
 *   start time the clock skips begins the window at the first instant after the gap.
 * - `month` / `week` with `opts.billingAnchor`: billing cycles, see `PeriodOptions`.
 * - `all_time`: `{ start: ALL_TIME_START, end: null }`.
 * - `{ rolling_seconds: N }`: `{ start: t - N s, end: t }`, read as `(start, end]`: usage at
 *   exactly `start` has aged out, usage at `t` counts. It slides with `t` (no fixed reset).
 *
 * Hot path: UTC hours, days and weeks are two floor divisions. Everything else remembers its two
 * most recent windows per zone, unit and billing anchor, so an instant inside one costs a map
 * look-up and two comparisons. A zoned window the cache misses costs ~5 Intl offset look-ups
 * (~2 µs each), ~35 more within a day of a DST transition (bisection).
 *
 * Throws RangeError for a non-finite instant or one outside the Date range, a rolling period that
 * is not a positive number of seconds, and (for calendar periods) an unknown zone.
 */
export function periodWindow(period: Period, t: number, opts?: PeriodOptions): PeriodWindow {
  if (!(t >= INSTANT_MIN_MS && t <= INSTANT_MAX_MS)) throw new RangeError(`instant out of range: ${t}`);
  if (typeof period === "object") {
    const seconds = period.rolling_seconds;
    if (!(seconds > 0 && Number.isFinite(seconds))) {
      throw new RangeError(`rolling_seconds must be a positive number, got ${seconds}`);
    }
    return { start: t - seconds * 1000, end: t };
  }
  if (period === "all_time") return ALL_TIME_WINDOW;
  const unit = unitIndex(period);
  const zoneName = opts?.timezone ?? "UTC";
  const anchor = unit >= WEEK ? (opts?.billingAnchor ?? null) : null;
  if (anchor !== null && !(anchor >= INSTANT_MIN_MS && anchor <= INSTANT_MAX_MS)) {
    throw new RangeError(`billing anchor out of range: ${anchor}`);
  }
  const windows = zoneWindowsOf(zoneName);
  if (anchor !== null) return windows.anchored(unit, anchor).windowAt(t);
  // UTC hours, days and weeks: two floor divisions beat any cache.
  if (windows.zone.utc && unit !== MONTH) return utcFixedWindow(unit, t);
  return windows.units[unit]!.windowAt(t);
}

/**
 * When the window of `period` containing `t` ends: the next window's start, i.e. a limit's
 * `reset_at`. Null for `all_time`; `t` itself for a rolling period (it resets continuously).
 */
export function nextPeriodStart(period: Period, t: number, opts?: PeriodOptions): number | null {
  return periodWindow(period, t, opts).end;
}

/**
 * Forgets every remembered window, zone and DST transition (tests and benchmarks; results never
 * depend on it).
 */
export function clearPeriodCache(): void {
  zoneWindows.clear();
  lastZone = null;
  clearZoneCache();
}

// ---------------------------------------------------------------------------------------------
// Cycles: how a unit labels wall times. `labelOf(wall)` is the largest label whose start is at or
// before `wall`; `wallStart(k)` is the wall time at which label k begins, strictly increasing.

interface Cycle {
  labelOf(wall: number): number;
  wallStart(label: number): number;
}

const HOUR = 0;
const DAY = 1;
const WEEK = 2;
const MONTH = 3;

function unitIndex(unit: CalendarUnit): number {
  switch (unit) {
    case "hour":
      return HOUR;
    case "day":
      return DAY;
    case "week":
      return WEEK;
    case "month":
      return MONTH;
    default:
      throw new RangeError(`unknown period ${JSON.stringify(unit)}`);
  }
}

/** A cycle of fixed-length steps whose labels start at `phase + k * size`. */
const fixedCycle = (size: number, phase: number): Cycle => ({
  labelOf: (wall) => Math.floor((wall - phase) / size),
  wallStart: (k) => phase + k * size,
});

const monthCycle: Cycle = {
  labelOf: (wall) => monthIndexOfDay(Math.floor(wall / DAY_MS)),
  wallStart: (k) => firstDayOfMonthIndex(k) * DAY_MS,
};

const CYCLES: readonly Cycle[] = [
  fixedCycle(HOUR_MS, 0),
  fixedCycle(DAY_MS, 0),
  fixedCycle(WEEK_MS, MONDAY_EPOCH_MS),
  monthCycle,
];

/**
 * Billing cycles anchored at wall time `anchorWall`: weekly on its weekday and time, or monthly on
 * its day-of-month and time, clamped to the last day of shorter months (the 31st rule: a Jan 31
 * anchor gives Feb 28 or 29, then Mar 31).
 */
function anchoredCycle(unit: number, anchorWall: number): Cycle {
  if (unit === WEEK) return fixedCycle(WEEK_MS, anchorWall - Math.floor(anchorWall / WEEK_MS) * WEEK_MS);
  const anchorDay = Math.floor(anchorWall / DAY_MS);
  const timeOfDay = anchorWall - anchorDay * DAY_MS;
  const dayOfMonth = anchorDay - firstDayOfMonthIndex(monthIndexOfDay(anchorDay)) + 1;
  const wallStart = (k: number): number => {
    const first = firstDayOfMonthIndex(k);
    const length = firstDayOfMonthIndex(k + 1) - first;
    return (first + Math.min(dayOfMonth, length) - 1) * DAY_MS + timeOfDay;
  };
  return {
    labelOf: (wall) => {
      const k = monthIndexOfDay(Math.floor(wall / DAY_MS));
      return wall < wallStart(k) ? k - 1 : k;
    },
    wallStart,
  };
}

/** Unanchored UTC hours, days and weeks. */
function utcFixedWindow(unit: number, t: number): PeriodWindow {
  const size = unit === HOUR ? HOUR_MS : unit === DAY ? DAY_MS : WEEK_MS;
  const phase = unit === WEEK ? MONDAY_EPOCH_MS : 0;
  const start = phase + Math.floor((t - phase) / size) * size;
  return { start, end: start + size };
}

/**
 * The window of `cycle` containing `t` in `zone`. Start from the label the local clock shows at
 * t; when the clock has been set back (a fall-back overlap), a later label's window may already
 * have begun, so step forward while the next window has started by t.
 */
function zonedWindow(zone: Zone, cycle: Cycle, t: number): CalendarWindow {
  let k = cycle.labelOf(wallAt(zone, t));
  let start = firstInstantAtWall(zone, cycle.wallStart(k));
  let end = firstInstantAtWall(zone, cycle.wallStart(k + 1));
  // Offsets move by at most a day, so a few steps suffice (one for a 25-hour day).
  for (let steps = 0; end <= t; steps++) {
    assert(steps < 64, `period window search did not converge in ${zone.name} at ${t}`);
    k += 1;
    start = end;
    end = firstInstantAtWall(zone, cycle.wallStart(k + 1));
  }
  assert(start <= t && t < end, `period window does not contain ${t} in ${zone.name}`);
  return { start, end };
}

interface CalendarWindow {
  readonly start: number;
  readonly end: number;
}

/** The two most recent windows of one cycle in one zone: the current one, and the one before. */
class WindowCache {
  private recent: CalendarWindow | null = null;
  private previous: CalendarWindow | null = null;

  constructor(
    private readonly zone: Zone,
    private readonly cycle: Cycle,
  ) {}

  windowAt(t: number): CalendarWindow {
    const recent = this.recent;
    if (recent !== null && recent.start <= t && t < recent.end) return recent;
    const previous = this.previous;
    if (previous !== null && previous.start <= t && t < previous.end) {
      this.previous = recent;
      this.recent = previous;
      return previous;
    }
    // Frozen: callers share the object the cache hands out.
    const window = Object.freeze(zonedWindow(this.zone, this.cycle, t));
    this.previous = recent;
    this.recent = window;
    return window;
  }
}

class ZoneWindows {
  readonly units: readonly WindowCache[];
  private readonly anchoredCaches = [new Map<number, WindowCache>(), new Map<number, WindowCache>()];

  constructor(readonly zone: Zone) {
    this.units = CYCLES.map((cycle) => new WindowCache(zone, cycle));
  }

  anchored(unit: number, anchor: number): WindowCache {
    const caches = this.anchoredCaches[unit - WEEK]!;
    let cache = caches.get(anchor);
    if (cache === undefined) {
      if (caches.size >= ANCHORED_CYCLES_CACHED_MAX) caches.clear();
      cache = new WindowCache(this.zone, anchoredCycle(unit, wallAt(this.zone, anchor)));
      caches.set(anchor, cache);
    }
    return cache;
  }
}

const zoneWindows = new Map<string, ZoneWindows>();
/** The last zone asked for: consecutive checks are usually for the same customer. */
let lastZone: ZoneWindows | null = null;

function zoneWindowsOf(name: string): ZoneWindows {
  if (lastZone !== null && lastZone.zone.name === name) return lastZone;
  let windows = zoneWindows.get(name);
  if (windows === undefined) {
    const zone = zoneOf(name);
    if (zoneWindows.size >= ZONE_WINDOWS_CACHED_MAX) zoneWindows.clear();
    windows = new ZoneWindows(zone);
    zoneWindows.set(name, windows);
  }
  lastZone = windows;
  return windows;
}
