/**
 * Pricing: exact money, effective-dated price rows and the cost of an event. See README.md for the
 * units and the invariants.
 */
export {
  type CostParts,
  type CostResult,
  eventCost,
  eventCostPico,
  hasTokenValues,
  ratesFor,
  TOKEN_VALUE_NAMES,
  type TokenValues,
} from "./cost.js";
export {
  COST_VALUE_DECIMALS,
  type DecimalOptions,
  decimalFromNumber,
  FEMTO_PER_USD,
  femtoToPico,
  formatDecimal,
  formatPicoUsd,
  formatPricePerMTok,
  formatUsd,
  NANO_PER_USD,
  PICO_PER_USD,
  PRICE_DECIMALS,
  parseDecimal,
  parsePicoUsd,
  parsePricePerMTok,
  parseUsd,
  pricePerMTokFromNumber,
  pricingBounds,
  USD_DECIMALS,
} from "./money.js";
export {
  DEFAULT_UNKNOWN_MODEL_POLICY,
  decidePrice,
  type PriceDecision,
  type PriceLookup,
  type UnknownModelPolicy,
  type UnknownModelPolicyName,
  unknownModelPolicyProblems,
} from "./policy.js";
export {
  type ModelAlias,
  type ModelMatch,
  matchesModel,
  modelAliasProblems,
  normalizeModel,
  PriceBook,
  type PriceMatch,
  type PriceRates,
  type PriceRow,
  type PriceSource,
  type PriceTier,
  priceFor,
  priceRowProblems,
  resolveAlias,
} from "./rows.js";
