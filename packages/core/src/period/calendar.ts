/**
 * Calendar windows in UTC, and the proleptic Gregorian arithmetic every period uses. Every instant
 * falls in exactly one window of each unit; windows of a unit are contiguous. Weeks start on Monday
 * 00:00, months on the 1st 00:00.
 *
 * All of it is integer arithmetic on epoch milliseconds and epoch days (no Date, no Intl), so the
 * UTC path of a limit check allocates nothing but its answer.
 */
export type CalendarUnit = "hour" | "day" | "week" | "month";

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;
export const WEEK_MS = 7 * DAY_MS;
/** 1970-01-01 was a Thursday; the first Monday is four days later. */
export const MONDAY_EPOCH_MS = 4 * DAY_MS;

// Math.floor of a quotient rather than `%`: V8 computes a double `%` with a libc call (~5x slower).
const floorTo = (t: number, size: number, origin = 0) => origin + Math.floor((t - origin) / size) * size;

/** Start of the UTC window of `unit` that contains `t`. */
export function windowStartUtc(unit: CalendarUnit, t: number): number {
  switch (unit) {
    case "hour":
      return floorTo(t, HOUR_MS);
    case "day":
      return floorTo(t, DAY_MS);
    case "week":
      return floorTo(t, WEEK_MS, MONDAY_EPOCH_MS);
    case "month":
      return firstDayOfMonthIndex(monthIndexOfDay(Math.floor(t / DAY_MS))) * DAY_MS;
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
    case "month":
      return firstDayOfMonthIndex(monthIndexOfDay(Math.floor(start / DAY_MS)) + 1) * DAY_MS;
  }
}

// Howard Hinnant's days_from_civil / civil_from_days (http://howardhinnant.github.io/date_algorithms.html):
// exact for every year a Date can hold, no tables, no loops. Eras are 400-year cycles of 146097 days.

/** Days since 1970-01-01 of the proleptic Gregorian date `year`-`month`-`day` (month 1–12). */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** The date of epoch day `days`: `{ year, month (1–12), day (1–31) }`. */
export function civilFromDays(days: number): { year: number; month: number; day: number } {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return { year: yoe + era * 400 + (month <= 2 ? 1 : 0), month, day };
}

/**
 * A month as one integer, `year * 12 + (month - 1)`, so that the next month is `+ 1` and months
 * compare as numbers. This is the month that contains epoch day `days`.
 */
export function monthIndexOfDay(days: number): number {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  // mp counts months from March; January and February belong to the next civil year.
  return (yoe + era * 400) * 12 + mp + 2;
}

/** Epoch day of the 1st of month index `monthIndex` (see `monthIndexOfDay`). */
export function firstDayOfMonthIndex(monthIndex: number): number {
  const year = Math.floor(monthIndex / 12);
  return daysFromCivil(year, monthIndex - year * 12 + 1, 1);
}

export const isLeapYear = (year: number): boolean => (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;

/** Days in `month` (1–12) of `year`. */
export function daysInMonth(year: number, month: number): number {
  if (month === 2) return isLeapYear(year) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}
