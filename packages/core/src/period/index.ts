/**
 * Calendar and rolling windows of limit periods, in UTC and IANA time zones. Pure: Intl is used
 * for zone offsets only, and nothing reads the clock. Invariants: README.md.
 */
export * from "./calendar.js";
export {
  ALL_TIME_START,
  clearPeriodCache,
  nextPeriodStart,
  type Period,
  type PeriodOptions,
  type PeriodWindow,
  periodWindow,
} from "./window.js";
export { canonicalTimeZone, INSTANT_MAX_MS, INSTANT_MIN_MS, isValidTimeZone } from "./zone.js";
