/**
 * The cost of one event under one price row, exactly, in femto-USD. See README.md for the token
 * conventions (cached ⊆ tokens_in, reasoning ⊆ tokens_out, each token priced once).
 */
import { invalid, type TollgateError } from "../errors.js";
import type { PriceRates, PriceRow } from "./rows.js";

/** The event values pricing reads; any other value is ignored. Absent counts as 0. */
export type TokenValues = {
  /** All input tokens, cached ones included. */
  tokens_in?: number;
  /** All output tokens, reasoning ones included. */
  tokens_out?: number;
  /** The part of tokens_in read from the provider's cache. */
  cached_tokens_in?: number;
  /** The part of tokens_out spent on reasoning. */
  reasoning_tokens?: number;
};

/** The value names that make an event priceable (with `dimensions.model`). */
export const TOKEN_VALUE_NAMES = ["tokens_in", "tokens_out", "cached_tokens_in", "reasoning_tokens"] as const;

/** Whether the event carries a token count to price (`tokens_in` or `tokens_out`). */
export function hasTokenValues(values: Readonly<Record<string, unknown>>): boolean {
  return typeof values.tokens_in === "number" || typeof values.tokens_out === "number";
}

/** Each kind's share of the cost, femto-USD; they add up to `cost`. */
export interface CostParts {
  input: bigint;
  cachedInput: bigint;
  output: bigint;
  reasoning: bigint;
}

export type CostResult =
  | {
      ok: true;
      /** femto-USD; `formatUsd(cost)` gives the API's decimal string. */
      cost: bigint;
      parts: CostParts;
      /** The row used: what the event records. */
      rowId: string;
      /** The long-context tier used (its `inputTokensAbove`), or undefined for the row's base rates. */
      tier?: number;
    }
  | { ok: false; error: TollgateError };

/** The rates that apply to an event with `tokensIn` input tokens: the highest tier it is above. */
export function ratesFor(row: PriceRow, tokensIn: number): { rates: PriceRates; tier?: number } {
  let chosen: { rates: PriceRates; tier?: number } = { rates: row };
  for (const tier of row.tiers ?? []) {
    if (tokensIn > tier.inputTokensAbove) chosen = { rates: tier, tier: tier.inputTokensAbove };
  }
  return chosen;
}

function count(values: TokenValues, name: (typeof TOKEN_VALUE_NAMES)[number]): number | TollgateError {
  const value: unknown = values[name];
  if (value === undefined) return 0;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    return invalid(`values.${name} must be a non-negative integer up to 2^53-1`, {
      field: `values.${name}`,
      value,
    });
  }
  return value;
}

/**
 * The cost of an event's token values under `row`, in femto-USD:
 *
 *   (tokens_in − cached_tokens_in) × input + cached_tokens_in × cachedInput
 *   + (tokens_out − reasoning_tokens) × output + reasoning_tokens × (reasoning ?? output)
 *
 * at the rates of the tier `tokens_in` falls in. Every token is priced exactly once. Never throws for
 * bad values: returns `{ ok: false, error }` (INVALID_REQUEST naming the field) so a batch can report
 * the event's index.
 */
export function eventCost(values: TokenValues, row: PriceRow): CostResult {
  const tokensIn = count(values, "tokens_in");
  if (typeof tokensIn !== "number") return { ok: false, error: tokensIn };
  const tokensOut = count(values, "tokens_out");
  if (typeof tokensOut !== "number") return { ok: false, error: tokensOut };
  const cached = count(values, "cached_tokens_in");
  if (typeof cached !== "number") return { ok: false, error: cached };
  const reasoning = count(values, "reasoning_tokens");
  if (typeof reasoning !== "number") return { ok: false, error: reasoning };
  if (cached > tokensIn) {
    return {
      ok: false,
      error: invalid("values.cached_tokens_in is part of tokens_in and cannot exceed it", {
        field: "values.cached_tokens_in",
        cached_tokens_in: cached,
        tokens_in: tokensIn,
      }),
    };
  }
  if (reasoning > tokensOut) {
    return {
      ok: false,
      error: invalid("values.reasoning_tokens is part of tokens_out and cannot exceed it", {
        field: "values.reasoning_tokens",
        reasoning_tokens: reasoning,
        tokens_out: tokensOut,
      }),
    };
  }
  const { rates, tier } = ratesFor(row, tokensIn);
  const parts: CostParts = {
    input: BigInt(tokensIn - cached) * rates.input,
    cachedInput: BigInt(cached) * rates.cachedInput,
    output: BigInt(tokensOut - reasoning) * rates.output,
    reasoning: BigInt(reasoning) * (rates.reasoning ?? rates.output),
  };
  const cost = parts.input + parts.cachedInput + parts.output + parts.reasoning;
  return tier === undefined
    ? { ok: true, cost, parts, rowId: row.id }
    : { ok: true, cost, parts, rowId: row.id, tier };
}

/** Per rates object: its rates in pico-USD per token as Numbers, or null if one is not a safe integer. */
const picoRates = new WeakMap<PriceRates, readonly [number, number, number, number] | null>();

function picoRatesOf(rates: PriceRates): readonly [number, number, number, number] | null {
  let r = picoRates.get(rates);
  if (r !== undefined) return r;
  const all = [rates.input, rates.cachedInput, rates.output, rates.reasoning ?? rates.output];
  const max = BigInt(Number.MAX_SAFE_INTEGER);
  r = all.every((f) => f % 1000n === 0n && f / 1000n <= max)
    ? ([0, 1, 2, 3].map((i) => Number(all[i]! / 1000n)) as unknown as readonly [
        number,
        number,
        number,
        number,
      ])
    : null;
  picoRates.set(rates, r);
  return r;
}

/**
 * `eventCost` in pico-USD as a Number, computed with Numbers when that is exact: every value a safe
 * integer, every rate a whole number of pico-USD, and every product and the sum at most 2^53 − 1 (a
 * product of two integers that is at most 2^53 is exact in a double; one above it rounds to at least
 * 2^53, which the check sees). Otherwise (or for a bad event) null: use `eventCost`. Pricing runs for
 * every recorded event and every check of a model, where BigInt arithmetic was a third of the check.
 */
export function eventCostPico(values: TokenValues, row: PriceRow): number | null {
  const tokensIn = values.tokens_in ?? 0;
  const tokensOut = values.tokens_out ?? 0;
  const cached = values.cached_tokens_in ?? 0;
  const reasoning = values.reasoning_tokens ?? 0;
  if (
    !Number.isSafeInteger(tokensIn) ||
    !Number.isSafeInteger(tokensOut) ||
    !Number.isSafeInteger(cached) ||
    !Number.isSafeInteger(reasoning) ||
    cached < 0 ||
    reasoning < 0 ||
    cached > tokensIn ||
    reasoning > tokensOut
  )
    return null;
  const rates = row.tiers === undefined ? row : ratesFor(row, tokensIn).rates;
  const p = picoRatesOf(rates);
  if (p === null) return null;
  const max = Number.MAX_SAFE_INTEGER;
  const a = (tokensIn - cached) * p[0];
  const b = cached * p[1];
  const c = (tokensOut - reasoning) * p[2];
  const d = reasoning * p[3];
  if (a > max || b > max || c > max || d > max) return null;
  const sum = a + b + c + d;
  return sum > max ? null : sum;
}
