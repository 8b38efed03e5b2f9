/**
 * IANA time zones through Intl: the UTC offset at an instant, and the first instant at which the
 * local clock reaches a given wall-clock time. Nothing here reads the clock.
 *
 * "Wall time" is local date and time written as milliseconds since 1970-01-01T00:00 *as if* it
 * were UTC: `wall(t) = t + offset(t)`. Calendar arithmetic happens on wall times; only offsets
 * need Intl.
 */
import { assert } from "../errors.js";
import { DAY_MS } from "./calendar.js";

/** The range of instants a Date can hold (ECMA-262 §21.4.1.22); Intl refuses anything beyond. */
export const INSTANT_MIN_MS = -8_640_000_000_000_000;
export const INSTANT_MAX_MS = 8_640_000_000_000_000;

/**
 * Zones remembered (formatters are costly to build: ~20 µs). A caller can only reach this many
 * distinct valid spellings by varying letter case (Intl accepts "america/new_york"); the cache is
 * emptied rather than grown past it.
 */
export const ZONES_CACHED_MAX = 1_024;

export interface Zone {
  /** The name as given. */
  readonly name: string;
  /** Intl's canonical name ("US/Eastern" → "America/New_York", "Etc/UTC" → "UTC"). */
  readonly canonical: string;
  /** True for every spelling of UTC: the integer fast path applies. */
  readonly utc: boolean;
  readonly offsetFormat: Intl.DateTimeFormat;
  /** Transitions found so far (a few, most recent last): each is bisected once, not per window. */
  readonly transitions: number[];
}

/** Transitions remembered per zone: a few years' worth of DST changes. */
export const TRANSITIONS_CACHED_MAX = 16;

const zones = new Map<string, Zone>();

function buildZone(name: string): Zone | null {
  if (typeof name !== "string" || name.length === 0) return null;
  let offsetFormat: Intl.DateTimeFormat;
  try {
    // Only the "GMT±hh:mm[:ss]" part is read; the date fields are the cheapest ones Intl allows.
    offsetFormat = new Intl.DateTimeFormat("en-US", { timeZone: name, timeZoneName: "longOffset" });
  } catch {
    return null;
  }
  const canonical = offsetFormat.resolvedOptions().timeZone;
  return {
    name,
    canonical,
    utc: canonical === "UTC" || canonical === "Etc/UTC",
    offsetFormat,
    transitions: [],
  };
}

/** The zone called `name`; throws RangeError when Intl does not know it. */
export function zoneOf(name: string): Zone {
  const cached = zones.get(name);
  if (cached !== undefined) return cached;
  const zone = buildZone(name);
  if (zone === null) throw new RangeError(`unknown time zone ${JSON.stringify(name)}`);
  if (zones.size >= ZONES_CACHED_MAX) zones.clear();
  zones.set(name, zone);
  return zone;
}

/** Forgets every zone (and the transitions found in it). */
export function clearZoneCache(): void {
  zones.clear();
}

/** Whether `zone` is an IANA time zone name Intl knows (any letter case, aliases included). */
export function isValidTimeZone(zone: string): boolean {
  if (zones.has(zone)) return true;
  return buildZone(zone) !== null;
}

/** Intl's canonical spelling of `zone` ("US/Eastern" → "America/New_York"), or null if unknown. */
export function canonicalTimeZone(zone: string): string | null {
  return (zones.get(zone) ?? buildZone(zone))?.canonical ?? null;
}

const CHAR_0 = 48;
const CHAR_MINUS = 45;
const CHAR_MINUS_SIGN = 0x2212;

/** UTC offset of `zone` at instant `t`, in ms (local wall time = t + offset). */
export function offsetAt(zone: Zone, t: number): number {
  if (zone.utc) return 0;
  const clamped = Math.max(INSTANT_MIN_MS, Math.min(t, INSTANT_MAX_MS));
  // "3/8/2026, GMT-04:00", "GMT+05:45", "GMT-04:56:02" (local mean time), or "GMT" for zero.
  const s = zone.offsetFormat.format(clamped);
  const i = s.lastIndexOf("GMT") + 3;
  if (i === s.length) return 0;
  const c = s.charCodeAt(i);
  const sign = c === CHAR_MINUS || c === CHAR_MINUS_SIGN ? -1 : 1;
  let seconds =
    ((s.charCodeAt(i + 1) - CHAR_0) * 10 + s.charCodeAt(i + 2) - CHAR_0) * 3600 +
    ((s.charCodeAt(i + 4) - CHAR_0) * 10 + s.charCodeAt(i + 5) - CHAR_0) * 60;
  if (s.length > i + 6) seconds += (s.charCodeAt(i + 7) - CHAR_0) * 10 + s.charCodeAt(i + 8) - CHAR_0;
  return sign * seconds * 1000;
}

/** Wall time of instant `t` in `zone`. */
export const wallAt = (zone: Zone, t: number): number => t + offsetAt(zone, t);

/**
 * The first whole-second instant in (lo, hi] whose offset differs from `offsetLo` (the offset at
 * lo). Requires lo, hi whole seconds, hi - lo at most two days, and offset(hi) !== offsetLo. tzdata
 * transitions are whole seconds, so this is the transition itself. A transition already found in
 * (lo, hi] is the one (there is only one in two days); otherwise ~17 Intl calls of bisection.
 */
function transitionIn(zone: Zone, lo: number, offsetLo: number, hi: number): number {
  for (const known of zone.transitions) if (known > lo && known <= hi) return known;
  let a = lo;
  let b = hi;
  while (b - a > 1000) {
    const mid = a + Math.floor((b - a) / 2000) * 1000;
    if (offsetAt(zone, mid) === offsetLo) a = mid;
    else b = mid;
  }
  if (zone.transitions.length >= TRANSITIONS_CACHED_MAX) zone.transitions.shift();
  zone.transitions.push(b);
  return b;
}

/**
 * The first instant at which the local clock of `zone` shows `wall` or later:
 * `min { u : wall(u) >= wall }`.
 *
 * - An ordinary wall time is reached once: its instant.
 * - A wall time skipped by a forward transition (a DST gap: 02:30 on a spring-forward night, or
 *   00:00 where clocks jump from 24:00 to 01:00) is never shown; the answer is the transition, the
 *   first instant after the gap, whose local time is the end of the gap (03:00, 01:00).
 * - A wall time shown twice (a fall-back overlap) is answered with its first occurrence.
 *
 * The answer lies within a day of `wall` (offsets are under 16 hours). Offsets are probed at
 * `wall ± 1 day`; equal offsets there mean no transition in between, because no zone in tzdata
 * changes its offset twice within 48 hours (the closest pair, tzdata 2025, is ~4 days apart). When
 * they differ the transition is found by bisection (only near a transition, a few times a year).
 */
export function firstInstantAtWall(zone: Zone, wall: number): number {
  if (zone.utc) return wall;
  const base = Math.floor(wall / 1000) * 1000;
  let lo = base - DAY_MS;
  let offsetLo = offsetAt(zone, lo);
  const hi = base + DAY_MS;
  const offsetHi = offsetAt(zone, hi);
  // Walk the segments of constant offset in [lo, hi]; a segment [lo, next) shows wall times
  // [lo + offsetLo, next + offsetLo). The first segment starts below `wall` (lo + offset < wall).
  for (let segments = 0; ; segments++) {
    assert(segments < 8, `offset search did not converge in ${zone.name} at wall time ${wall}`);
    if (offsetLo === offsetHi) return Math.max(lo, wall - offsetLo);
    const next = transitionIn(zone, lo, offsetLo, hi);
    assert(next > lo, `offset transition search went backwards in ${zone.name}`);
    if (wall - offsetLo < next) return Math.max(lo, wall - offsetLo);
    lo = next;
    offsetLo = offsetAt(zone, next);
  }
}
