/**
 * Price rows and which one applies. See README.md ("Which row applies") for the precise rule.
 */
import type { ConfigProblem } from "../ratelimit/math.js";
import { pricingBounds } from "./money.js";

export type PriceSource = "catalogue" | "override";

/** Rates in nano-USD per 1M tokens (see money.ts): cost in femto-USD = tokens × rate. */
export interface PriceRates {
  /** Uncached input tokens. */
  input: bigint;
  /** Output tokens that are not reasoning tokens (and reasoning tokens when `reasoning` is absent). */
  output: bigint;
  /** Input tokens read from the provider's cache. Equal to `input` when the model has no cache discount. */
  cachedInput: bigint;
  /** Reasoning tokens; absent means they cost `output`, as every provider in the catalogue bills them. */
  reasoning?: bigint;
}

/**
 * A long-context tier: when an event's `tokens_in` is strictly above `inputTokensAbove`, the whole
 * event is priced at these rates instead of the row's (every kind: input, cached, output, reasoning),
 * the way providers bill long prompts. Tiers of a row are sorted by strictly increasing threshold.
 */
export interface PriceTier extends PriceRates {
  inputTokensAbove: number;
}

export interface PriceRow extends PriceRates {
  /** The model id the row prices; compared after `normalizeModel`. */
  model: string;
  /** Epoch ms from which the row applies (inclusive). 0 for the catalogue's base prices. */
  effectiveFrom: number;
  source: PriceSource;
  /** Stable id an event records as the row it was priced with. */
  id: string;
  /** The provider the catalogue took the row from (informational). */
  provider?: string;
  tiers?: readonly PriceTier[];
}

/**
 * How a catalogue recognises other names of its model (dated snapshots, Vertex names): the same
 * shape as the genai-prices `MatchLogic`. String tests are case-insensitive, on the normalized name.
 */
export type ModelMatch =
  | { equals: string }
  | { starts_with: string }
  | { ends_with: string }
  | { contains: string }
  | { regex: string }
  | { and: readonly ModelMatch[] }
  | { or: readonly ModelMatch[] };

/** `match` names other spellings of the catalogue model `model`. */
export interface ModelAlias {
  model: string;
  match: ModelMatch;
}

/** Model names are compared trimmed and lower-cased (as the price catalogue itself does). */
export function normalizeModel(model: string): string {
  return model.trim().toLowerCase();
}

const regexCacheMax = 1_024;
const regexCache = new Map<string, RegExp>();
function compiled(source: string): RegExp {
  let re = regexCache.get(source);
  if (!re) {
    if (regexCache.size >= regexCacheMax) regexCache.clear();
    re = new RegExp(source);
    regexCache.set(source, re);
  }
  return re;
}

/** Whether `model` (already normalized) satisfies `match`. */
export function matchesModel(match: ModelMatch, model: string): boolean {
  if ("or" in match) return match.or.some((m) => matchesModel(m, model));
  if ("and" in match) return match.and.every((m) => matchesModel(m, model));
  if ("equals" in match) return model === match.equals.toLowerCase();
  if ("starts_with" in match) return model.startsWith(match.starts_with.toLowerCase());
  if ("ends_with" in match) return model.endsWith(match.ends_with.toLowerCase());
  if ("contains" in match) return model.includes(match.contains.toLowerCase());
  if ("regex" in match) return compiled(match.regex).test(model);
  return false;
}

/** The catalogue model an alias list maps `model` to: the first alias that matches, or undefined. */
export function resolveAlias(model: string, aliases: readonly ModelAlias[]): string | undefined {
  const key = normalizeModel(model);
  for (const alias of aliases) {
    if (matchesModel(alias.match, key)) return normalizeModel(alias.model);
  }
  return undefined;
}

const sourceRank: Record<PriceSource, number> = { catalogue: 0, override: 1 };

/**
 * The row in force at `at` among rows of one model: the greatest effectiveFrom ≤ at; on equal
 * effectiveFrom an override beats a catalogue row; on a full tie the later row in the list wins.
 */
function inForce(rows: readonly PriceRow[], at: number): PriceRow | undefined {
  let best: PriceRow | undefined;
  for (const row of rows) {
    if (row.effectiveFrom > at) continue;
    if (
      best === undefined ||
      row.effectiveFrom > best.effectiveFrom ||
      (row.effectiveFrom === best.effectiveFrom && sourceRank[row.source] >= sourceRank[best.source])
    ) {
      best = row;
    }
  }
  return best;
}

export interface PriceMatch {
  row: PriceRow;
  /** The normalized model name whose rows were used. */
  model: string;
  /** "exact": rows named like the event's model; "alias": the catalogue mapped the name to `model`. */
  via: "exact" | "alias";
}

/**
 * The price in force for `model` at epoch ms `at`, or undefined (an unknown model, or no row yet).
 * Rows named exactly like the model (after normalization) come first; only when none of them is in
 * force does the alias list map the name to a catalogue model, whose rows are then used.
 * Linear in `rows`; a `PriceBook` answers the same question from an index.
 */
export function priceFor(
  rows: readonly PriceRow[],
  model: string,
  at: number,
  aliases: readonly ModelAlias[] = [],
): PriceRow | undefined {
  const key = normalizeModel(model);
  const exact = inForce(
    rows.filter((r) => normalizeModel(r.model) === key),
    at,
  );
  if (exact) return exact;
  const canonical = resolveAlias(key, aliases);
  if (canonical === undefined || canonical === key) return undefined;
  return inForce(
    rows.filter((r) => normalizeModel(r.model) === canonical),
    at,
  );
}

/** An index over rows and aliases: the same answers as `priceFor`, without scanning every row. */
export class PriceBook {
  readonly rows: readonly PriceRow[];
  readonly aliases: readonly ModelAlias[];
  private readonly byModel = new Map<string, PriceRow[]>();
  private readonly aliasCache = new Map<string, string | null>();

  constructor(rows: readonly PriceRow[], aliases: readonly ModelAlias[] = []) {
    this.rows = rows;
    this.aliases = aliases;
    for (const row of rows) {
      const key = normalizeModel(row.model);
      const list = this.byModel.get(key);
      if (list) list.push(row);
      else this.byModel.set(key, [row]);
    }
  }

  /** Whether any row (in force or not) names this model, directly or through an alias. */
  knows(model: string): boolean {
    const key = normalizeModel(model);
    if (this.byModel.has(key)) return true;
    const canonical = this.canonical(key);
    return canonical !== undefined && this.byModel.has(canonical);
  }

  priceFor(model: string, at: number): PriceRow | undefined {
    return this.lookup(model, at)?.row;
  }

  lookup(model: string, at: number): PriceMatch | undefined {
    const key = normalizeModel(model);
    const exact = inForce(this.byModel.get(key) ?? [], at);
    if (exact) return { row: exact, model: key, via: "exact" };
    const canonical = this.canonical(key);
    if (canonical === undefined || canonical === key) return undefined;
    const row = inForce(this.byModel.get(canonical) ?? [], at);
    return row ? { row, model: canonical, via: "alias" } : undefined;
  }

  private canonical(key: string): string | undefined {
    let hit = this.aliasCache.get(key);
    if (hit === undefined) {
      hit = resolveAlias(key, this.aliases) ?? null;
      if (this.aliasCache.size >= regexCacheMax * 16) this.aliasCache.clear();
      this.aliasCache.set(key, hit);
    }
    return hit ?? undefined;
  }
}

function rateProblems(rates: PriceRates, path: string, problems: ConfigProblem[]): void {
  for (const kind of ["input", "output", "cachedInput", "reasoning"] as const) {
    const value = rates[kind];
    if (value === undefined && kind === "reasoning") continue;
    if (typeof value !== "bigint" || value < 0n || value > pricingBounds.pricePerMTokMaxNano) {
      problems.push({
        path: `${path}${kind}`,
        message: "must be a bigint from 0 to 1e15 nano-USD per 1M tokens",
      });
    }
  }
}

/** Everything wrong with a row, with field paths (empty when the row is usable). */
export function priceRowProblems(row: PriceRow): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (typeof row.model !== "string" || normalizeModel(row.model).length === 0) {
    problems.push({ path: "model", message: "must be a non-empty string" });
  } else if (row.model.length > pricingBounds.modelLengthMax) {
    problems.push({ path: "model", message: `must be at most ${pricingBounds.modelLengthMax} characters` });
  }
  if (!Number.isSafeInteger(row.effectiveFrom) || row.effectiveFrom < 0) {
    problems.push({ path: "effectiveFrom", message: "must be a non-negative integer epoch ms" });
  }
  if (row.source !== "catalogue" && row.source !== "override") {
    problems.push({ path: "source", message: 'must be "catalogue" or "override"' });
  }
  if (typeof row.id !== "string" || row.id.length === 0) {
    problems.push({ path: "id", message: "must be a non-empty string" });
  }
  rateProblems(row, "", problems);
  const tiers = row.tiers ?? [];
  if (tiers.length > pricingBounds.tiersMax) {
    problems.push({ path: "tiers", message: `must have at most ${pricingBounds.tiersMax} tiers` });
  }
  let previous = -1;
  tiers.forEach((tier, i) => {
    if (!Number.isSafeInteger(tier.inputTokensAbove) || tier.inputTokensAbove <= previous) {
      problems.push({
        path: `tiers[${i}].inputTokensAbove`,
        message: "must be a non-negative integer, strictly increasing",
      });
    }
    previous = tier.inputTokensAbove;
    rateProblems(tier, `tiers[${i}].`, problems);
  });
  return problems;
}

/** Everything wrong with an alias list (unknown shapes, regexes that do not compile). */
export function modelAliasProblems(aliases: readonly ModelAlias[]): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const check = (match: unknown, path: string, depth: number): void => {
    if (depth > 8 || typeof match !== "object" || match === null || Array.isArray(match)) {
      problems.push({ path, message: "must be a match object (nested at most 8 deep)" });
      return;
    }
    const keys = Object.keys(match);
    const [key] = keys;
    const value = (match as Record<string, unknown>)[key ?? ""];
    if (keys.length !== 1 || key === undefined) {
      problems.push({ path, message: "must have exactly one key" });
    } else if (key === "and" || key === "or") {
      if (!Array.isArray(value)) problems.push({ path: `${path}.${key}`, message: "must be an array" });
      else
        value.forEach((m, i) => {
          check(m, `${path}.${key}[${i}]`, depth + 1);
        });
    } else if (["equals", "starts_with", "ends_with", "contains", "regex"].includes(key)) {
      if (typeof value !== "string") problems.push({ path: `${path}.${key}`, message: "must be a string" });
      else if (key === "regex") {
        try {
          new RegExp(value);
        } catch {
          problems.push({ path: `${path}.regex`, message: "is not a valid regular expression" });
        }
      }
    } else {
      problems.push({ path: `${path}.${key}`, message: "is not a known match" });
    }
  };
  aliases.forEach((alias, i) => {
    if (typeof alias.model !== "string" || normalizeModel(alias.model).length === 0) {
      problems.push({ path: `[${i}].model`, message: "must be a non-empty string" });
    }
    check(alias.match, `[${i}].match`, 0);
  });
  return problems;
}
