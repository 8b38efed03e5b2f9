/**
 * What a plan includes beyond limits: feature gates, the model classes it allows, and the usage
 * included per meter with the price of each unit past it (overage). Pure: no clock, no store.
 */
import { invalid } from "../errors.js";
import { formatDecimal, formatPicoUsd, parseDecimal, parsePicoUsd } from "../pricing/money.js";

/** Bounds of plan terms and of the workspace's model-class map. */
export const planBounds = {
  featuresMax: 256,
  modelClassesMax: 64,
  overageTermsMax: 64,
  modelClassMapEntriesMax: 4_096,
  nameLengthMax: 128,
  /** Decimal places of an overage unit price (USD): pico-USD, the unit of `values.cost`. */
  unitPriceDecimals: 12,
} as const;

/** One meter's included amount and overage price, as stored. */
export interface OverageTerm {
  meter: string;
  /** Meter units included per billing period (pico-USD for a meter over cost), as a decimal string. */
  included: string;
  /** USD per meter unit past `included` (per USD of cost for a meter over cost), 12 decimals at most. */
  unitPrice: string;
  /** The meter sums `cost`: amounts are pico-USD, shown as USD strings. */
  cost?: true;
}

/** The entitlement part of a plan, as stored in the plan's record. */
export interface PlanTerms {
  /** Feature gates: a feature listed true is included; anything else (false, absent) is not. */
  features: Record<string, boolean>;
  /** The model classes the plan includes; null: every model, whatever its class. */
  modelClasses: string[] | null;
  overage: OverageTerm[];
}

export const EMPTY_TERMS: PlanTerms = Object.freeze({
  features: Object.freeze({}) as Record<string, boolean>,
  modelClasses: null,
  overage: Object.freeze([]) as unknown as OverageTerm[],
}) as PlanTerms;

/** The API's snake_case input of the terms (already shape-checked by the boundary schema). */
export interface PlanTermsInput {
  features?: Record<string, boolean> | null;
  model_classes?: string[] | null;
  overage?: { meter: string; included: number | string; unit_price: string }[] | null;
}

/**
 * Validates and normalizes the terms of PUT /v1/plans. `meterIsCost(id)` tells whether a meter
 * sums `cost` (its included amount is then money: a USD string); undefined for a meter that does
 * not exist. Throws INVALID_REQUEST naming the field.
 */
export function toPlanTerms(
  input: PlanTermsInput,
  meterKind: (meter: string) => "cost" | "units" | "unsupported" | undefined,
): PlanTerms {
  const features: Record<string, boolean> = {};
  for (const [name, on] of Object.entries(input.features ?? {})) {
    if (typeof on !== "boolean") throw invalid("a feature is true or false", { field: `features.${name}` });
    features[name] = on;
  }
  let modelClasses: string[] | null = null;
  if (input.model_classes != null) {
    modelClasses = [...new Set(input.model_classes)].sort();
  }
  const overage: OverageTerm[] = [];
  const seen = new Set<string>();
  for (const [i, t] of (input.overage ?? []).entries()) {
    const field = (name: string) => `overage[${i}].${name}`;
    if (seen.has(t.meter)) throw invalid(`meter ${t.meter} is listed twice`, { field: field("meter") });
    seen.add(t.meter);
    const kind = meterKind(t.meter);
    if (kind === undefined) throw invalid(`meter ${t.meter} does not exist`, { field: field("meter") });
    if (kind === "unsupported") {
      throw invalid("overage counts a sum or count meter", { field: field("meter") });
    }
    let included: bigint;
    if (kind === "cost") {
      if (typeof t.included !== "string") {
        throw invalid("included is money for a meter over cost: a decimal USD string", {
          field: field("included"),
        });
      }
      included = parsePicoUsd(t.included, { field: field("included") });
    } else {
      if (typeof t.included !== "number" || !Number.isSafeInteger(t.included) || t.included < 0) {
        throw invalid("included is a non-negative integer number of meter units", {
          field: field("included"),
        });
      }
      included = BigInt(t.included);
    }
    const price = parseDecimal(t.unit_price, planBounds.unitPriceDecimals, { field: field("unit_price") });
    overage.push({
      meter: t.meter,
      included: included.toString(),
      unitPrice: formatDecimal(price, planBounds.unitPriceDecimals, 0),
      ...(kind === "cost" ? { cost: true as const } : {}),
    });
  }
  return { features, modelClasses, overage };
}

/** Back to the API's JSON. */
export function presentPlanTerms(terms: PlanTerms): {
  features: Record<string, boolean>;
  model_classes: string[] | null;
  overage: { meter: string; included: number | string; unit_price: string }[];
} {
  return {
    features: terms.features,
    model_classes: terms.modelClasses,
    overage: terms.overage.map((t) => ({
      meter: t.meter,
      included: t.cost ? formatPicoUsd(BigInt(t.included)) : Number(t.included),
      unit_price: t.unitPrice,
    })),
  };
}

/** The stored terms of a plan record (plans written before terms existed have none). */
export function termsOf(body: Partial<PlanTerms> | undefined | null): PlanTerms {
  if (!body) return EMPTY_TERMS;
  return {
    features: body.features ?? {},
    modelClasses: body.modelClasses ?? null,
    overage: body.overage ?? [],
  };
}

// ---- overage --------------------------------------------------------------------------------------

export interface OverageLine {
  meter: string;
  /** Integers in meter units (pico-USD for a meter over cost). */
  included: bigint;
  used: bigint;
  overageUnits: bigint;
  /** The charge in USD, exact, as a scaled integer: `charge / 10^chargeScale` USD. */
  charge: bigint;
  chargeScale: number;
  unitPrice: string;
}

/**
 * Overage of one meter for one period: the units used past the included amount, times the unit
 * price. For a meter over cost the units are pico-USD and the price is per USD, so the charge
 * carries 24 decimals; otherwise 12. Never rounded.
 */
export function overageLine(term: OverageTerm, used: bigint): OverageLine {
  const included = BigInt(term.included);
  const overageUnits = used > included ? used - included : 0n;
  const price = parseDecimal(term.unitPrice, planBounds.unitPriceDecimals);
  return {
    meter: term.meter,
    included,
    used,
    overageUnits,
    charge: overageUnits * price,
    chargeScale: planBounds.unitPriceDecimals + (term.cost ? 12 : 0),
    unitPrice: term.unitPrice,
  };
}

/** Sums charges of different scales exactly, at the largest scale. */
export function sumCharges(lines: { charge: bigint; chargeScale: number }[]): {
  charge: bigint;
  chargeScale: number;
} {
  let scale: number = planBounds.unitPriceDecimals;
  for (const l of lines) scale = Math.max(scale, l.chargeScale);
  let total = 0n;
  for (const l of lines) total += l.charge * 10n ** BigInt(scale - l.chargeScale);
  return { charge: total, chargeScale: scale };
}

/** A charge as a USD string: exact, at least 6 decimals (like every money field of the API). */
export function formatCharge(charge: bigint, scale: number): string {
  return formatDecimal(charge, scale, Math.min(6, scale));
}
