import type { MeterDef, UsageEvent } from "../types.js";

/**
 * Meters turn events into numbers. An event contributes to a meter when its type is the meter's
 * event_type and every filter entry equals the event's dimension. Its contribution ("meter value") is
 * the sum of the meter's listed values (missing ones count 0); `count` contributes 1 per event, and
 * `unique_count` contributes the identity of the listed fields (dimensions first, then values).
 */
export function meterMatches(meter: Pick<MeterDef, "eventType" | "filter">, event: UsageEvent): boolean {
  if (event.type !== meter.eventType) return false;
  for (const key in meter.filter) {
    if (event.dimensions[key] !== meter.filter[key]) return false;
  }
  return true;
}

/** The event's numeric contribution: the sum of the listed values. */
export function meterValue(meter: Pick<MeterDef, "aggregation" | "value">, event: UsageEvent): number {
  if (meter.aggregation === "count") return 1;
  let total = 0;
  for (const name of meter.value) total += event.values[name] ?? 0;
  return total;
}

/** The identity a unique_count meter counts: the listed fields, a dimension before a value of that name. */
export function uniqueKey(meter: Pick<MeterDef, "value">, event: UsageEvent): string | undefined {
  if (meter.value.length === 1) {
    const name = meter.value[0]!;
    const d = event.dimensions[name];
    if (d !== undefined) return `d${d}`;
    const v = event.values[name];
    return v === undefined ? undefined : `v${v}`;
  }
  const parts: unknown[] = [];
  let any = false;
  for (const name of meter.value) {
    const value = event.dimensions[name] ?? event.values[name] ?? null;
    if (value !== null) any = true;
    parts.push(value);
  }
  return any ? JSON.stringify(parts) : undefined;
}

/** A running aggregate over events of one window and group. */
export interface Accumulator {
  add(event: UsageEvent, seq: number): void;
  /** A number when it is a safe integer; a bigint for sums past 2^53-1. */
  result(): number | bigint;
}

export function createAccumulator(meter: Pick<MeterDef, "aggregation" | "value">): Accumulator {
  switch (meter.aggregation) {
    case "sum":
    case "count": {
      // Exact: a number while the total is a safe integer, a bigint past that.
      let total = 0;
      let big: bigint | null = null;
      return {
        add(e) {
          const v = meterValue(meter, e);
          if (big !== null) big += BigInt(v);
          else if (Number.isSafeInteger(total + v)) total += v;
          else big = BigInt(total) + BigInt(v);
        },
        result: () => (big === null ? total : big),
      };
    }
    case "max": {
      let best = 0;
      let seen = false;
      return {
        add(e) {
          const v = meterValue(meter, e);
          if (!seen || v > best) best = v;
          seen = true;
        },
        result: () => best,
      };
    }
    case "latest": {
      // The value of the event with the latest timestamp; among equal timestamps, the one stored last.
      let value = 0;
      let at = Number.NEGATIVE_INFINITY;
      let atSeq = -1;
      return {
        add(e, seq) {
          if (e.timestamp > at || (e.timestamp === at && seq > atSeq)) {
            value = meterValue(meter, e);
            at = e.timestamp;
            atSeq = seq;
          }
        },
        result: () => value,
      };
    }
    case "unique_count": {
      const seen = new Set<string>();
      return {
        add(e) {
          const k = uniqueKey(meter, e);
          if (k !== undefined) seen.add(k);
        },
        result: () => seen.size,
      };
    }
  }
}
