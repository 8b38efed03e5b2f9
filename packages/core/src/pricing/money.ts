/**
 * Exact money. Two integer units, both bigint, chosen so that price × tokens needs no division:
 *
 * - a price is **nano-USD per 1M tokens** (1e-9 USD per 1M tokens = 1e-15 USD per token);
 * - a cost is **femto-USD** (1e-15 USD).
 *
 * So `cost (femto-USD) = tokens × price (nano-USD per 1M tokens)`, exactly, for any integer token count.
 * No float ever touches money: decimals are parsed and printed as strings.
 */
import { invalid } from "../errors.js";

/** Decimal places of a price in USD per 1M tokens that the unit keeps (nano-USD). */
export const PRICE_DECIMALS = 9;
/** Decimal places of a cost in USD that the unit keeps (femto-USD). */
export const USD_DECIMALS = 15;
/** femto-USD in one USD. */
export const FEMTO_PER_USD = 10n ** 15n;
/** nano-USD (per 1M tokens) in one USD (per 1M tokens). */
export const NANO_PER_USD = 10n ** 9n;

export const pricingBounds = {
  /** Longest decimal string accepted for a price or an amount of money. */
  decimalLengthMax: 64,
  /** Highest price: 1,000,000 USD per 1M tokens (1 USD per token), in nano-USD per 1M tokens. */
  pricePerMTokMaxNano: 1_000_000n * NANO_PER_USD,
  /** Context-length tiers one price row may carry. */
  tiersMax: 16,
  /** Length of a model name. */
  modelLengthMax: 256,
} as const;

export interface DecimalOptions {
  /** Accept a leading "-" (amounts of money that may be negative; never prices). @default false */
  allowNegative?: boolean;
  /** Field path named in the error details. @default "value" */
  field?: string;
}

const decimalPattern = /^(-?)(\d+)(?:\.(\d+))?$/;

/**
 * Parses a plain decimal string ("12", "0.0045", "3.000") into an integer with `scale` implied
 * decimal places. Rejects exponents, signs other than an allowed "-", empty parts ("5.", ".5") and
 * any non-zero digit beyond `scale` places: nothing is ever rounded.
 */
export function parseDecimal(text: string, scale: number, options: DecimalOptions = {}): bigint {
  const field = options.field ?? "value";
  if (typeof text !== "string" || text.length === 0 || text.length > pricingBounds.decimalLengthMax) {
    throw invalid(`${field} must be a decimal string of 1 to ${pricingBounds.decimalLengthMax} characters`, {
      field,
    });
  }
  const match = decimalPattern.exec(text);
  if (!match) {
    throw invalid(`${field} must be a plain decimal number such as "0.0045"`, { field, value: text });
  }
  const [, sign = "", whole = "0", fraction = ""] = match;
  if (sign === "-" && !options.allowNegative) {
    throw invalid(`${field} must not be negative`, { field, value: text });
  }
  const kept = fraction.slice(0, scale);
  if (/[1-9]/.test(fraction.slice(scale))) {
    throw invalid(`${field} has more than ${scale} decimal places`, { field, value: text });
  }
  const magnitude = BigInt(whole + kept.padEnd(scale, "0"));
  return sign === "-" ? -magnitude : magnitude;
}

/**
 * Prints an integer with `scale` implied decimal places as a plain decimal string: never an exponent,
 * trailing zeros trimmed but at least `minDecimals` places kept ("0.004500" for minDecimals 6).
 */
export function formatDecimal(value: bigint, scale: number, minDecimals: number): string {
  if (!Number.isSafeInteger(minDecimals) || minDecimals < 0 || minDecimals > scale) {
    throw new RangeError(`minDecimals must be an integer from 0 to ${scale}`);
  }
  const negative = value < 0n;
  const digits = (negative ? -value : value).toString().padStart(scale + 1, "0");
  const whole = digits.slice(0, digits.length - scale);
  let fraction = digits.slice(digits.length - scale);
  let end = fraction.length;
  while (end > minDecimals && fraction[end - 1] === "0") end--;
  fraction = fraction.slice(0, end);
  return `${negative ? "-" : ""}${whole}${fraction ? `.${fraction}` : ""}`;
}

/** "0.0045" (USD) → 4_500_000_000_000n femto-USD. Negative only with `allowNegative`. */
export function parseUsd(decimal: string, options: DecimalOptions = {}): bigint {
  return parseDecimal(decimal, USD_DECIMALS, options);
}

/** femto-USD → "0.004500": exact, at least `minDecimals` decimals, at most 15. */
export function formatUsd(femto: bigint, minDecimals = 6): string {
  return formatDecimal(femto, USD_DECIMALS, minDecimals);
}

/** "2.5" (USD per 1M tokens) → 2_500_000_000n nano-USD per 1M tokens. Never negative. */
export function parsePricePerMTok(
  decimal: string,
  options: Omit<DecimalOptions, "allowNegative"> = {},
): bigint {
  const price = parseDecimal(decimal, PRICE_DECIMALS, { field: options.field ?? "price" });
  if (price > pricingBounds.pricePerMTokMaxNano) {
    throw invalid(`${options.field ?? "price"} exceeds 1000000 USD per 1M tokens`, {
      field: options.field ?? "price",
      value: decimal,
    });
  }
  return price;
}

/** nano-USD per 1M tokens → "2.5" (minimal decimals by default: it reproduces the source's figure). */
export function formatPricePerMTok(nano: bigint, minDecimals = 0): string {
  return formatDecimal(nano, PRICE_DECIMALS, minDecimals);
}

/**
 * The exact decimal a JS number stands for in a data file: its shortest round-trip string
 * (`String(n)`, what the file's author wrote), expanded out of exponent notation. `Number(result) === n`.
 */
export function decimalFromNumber(n: number, field = "value"): string {
  if (typeof n !== "number" || !Number.isFinite(n)) {
    throw invalid(`${field} must be a finite number`, { field, value: String(n) });
  }
  const shortest = String(n);
  const exponent = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(shortest);
  if (!exponent) return shortest;
  const [, sign = "", lead = "", rest = "", power = "0"] = exponent;
  const digits = lead + rest;
  const point = 1 + Number(power);
  if (point <= 0) return `${sign}0.${"0".repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${"0".repeat(point - digits.length)}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/**
 * A price from a data file (a JS number of USD per 1M tokens) → nano-USD per 1M tokens, exactly.
 * Throws INVALID_REQUEST when the number is negative, not finite, or has digits below 1e-9 USD per
 * 1M tokens: such a price is refused, never rounded.
 */
export function pricePerMTokFromNumber(n: number, field = "price"): bigint {
  return parsePricePerMTok(decimalFromNumber(n, field), { field });
}

/**
 * The unit of `values.cost` on a stored event, and of every meter, rollup and report over it:
 * pico-USD (1e-12 USD), a non-negative safe integer like every other event value. Costs are computed
 * in femto-USD and kept in pico only when that is exact: prices with up to 6 decimals per 1M tokens
 * (every catalogue price has at most 5) give whole pico-USD for any token count. One event can cost
 * up to 2^53 − 1 pico-USD ($9,007.199254740991); sums over events are exact bigints past that.
 */
export const COST_VALUE_DECIMALS = 12;
export const PICO_PER_USD = 10n ** 12n;

/** pico-USD (a `values.cost`, a meter sum over cost) → "0.004500". */
export function formatPicoUsd(pico: number | bigint, minDecimals = 6): string {
  return formatDecimal(BigInt(pico), COST_VALUE_DECIMALS, minDecimals);
}

/** "0.0045" (USD) → 4_500_000_000n pico-USD; more than 12 decimals is refused, never rounded. */
export function parsePicoUsd(decimal: string, options: DecimalOptions = {}): bigint {
  return parseDecimal(decimal, COST_VALUE_DECIMALS, options);
}

/** femto-USD → pico-USD when exact (a multiple of 1,000), else null. */
export function femtoToPico(femto: bigint): bigint | null {
  return femto % 1000n === 0n ? femto / 1000n : null;
}
