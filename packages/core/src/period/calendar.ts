/**
 * Calendar windows in UTC. Every instant falls in exactly one window of each unit; windows of a unit
 * are contiguous. Weeks start on Monday 00:00, months on the 1st 00:00.
 */
export type CalendarUnit = "hour" | "day" | "week" | "month";

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;
export const WEEK_MS = 7 * DAY_MS;
/** 1970-01-01 was a Thursday; the first Monday is four days later. */
const MONDAY_EPOCH_MS = 4 * DAY_MS;

const floorTo = (t: number, size: number, origin = 0) => t - mod(t - origin, size);
const mod = (a: number, n: number) => ((a % n) + n) % n;

/** Start of the UTC window of `unit` that contains `t`. */
export function windowStartUtc(unit: CalendarUnit, t: number): number {
  switch (unit) {
    case "hour":
      return floorTo(t, HOUR_MS);
    case "day":
      return floorTo(t, DAY_MS);
    case "week":
      return floorTo(t, WEEK_MS, MONDAY_EPOCH_MS);
    case "month": {
      const d = new Date(t);
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
    }
  }
}

/** Start of the UTC window after the one that starts at `start`. */
export function nextWindowStartUtc(unit: CalendarUnit, start: number): number {
  switch (unit) {
    case "hour":
      return start + HOUR_MS;
    case "day":
      return start + DAY_MS;
    case "week":
      return start + WEEK_MS;
    case "month": {
      const d = new Date(start);
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
    }
  }
}
