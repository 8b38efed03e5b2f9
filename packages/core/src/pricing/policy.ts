/**
 * What to do with an event whose model has no price: the workspace's unknown-model policy.
 */
import { invalid, type TollgateError } from "../errors.js";
import type { ConfigProblem } from "../ratelimit/math.js";
import type { PriceMatch, PriceRow } from "./rows.js";

export type UnknownModelPolicyName = "tokens_only" | "reject" | "fallback";

/**
 * @default { policy: "tokens_only" }
 * @example { policy: "fallback", fallbackModel: "gpt-4o" }
 */
export interface UnknownModelPolicy {
  /**
   * - `tokens_only`: record the event without `values.cost`;
   * - `reject`: refuse the event (400 INVALID_REQUEST naming `dimensions.model`);
   * - `fallback`: price it with the row in force for `fallbackModel`.
   */
  policy: UnknownModelPolicyName;
  /** Required for `fallback`: the model whose price stands in. */
  fallbackModel?: string;
}

export const DEFAULT_UNKNOWN_MODEL_POLICY: UnknownModelPolicy = { policy: "tokens_only" };

/** Anything that can answer "which row prices this model at this instant" (a `PriceBook`). */
export interface PriceLookup {
  lookup(model: string, at: number): PriceMatch | undefined;
}

export type PriceDecision =
  /** Price the event with `row`; `fallback` says the row is the policy's stand-in, not the model's own. */
  | { action: "price"; row: PriceRow; fallback: boolean }
  /** Record the event without a cost. */
  | { action: "tokens_only"; reason: "unknown_model" | "fallback_unpriced" }
  /** Refuse the event. */
  | { action: "reject"; error: TollgateError };

/**
 * The decision for an event of `model` at epoch ms `at`. A known model is always priced with its own
 * row. For an unknown one the policy decides; with `fallback`, a fallback model that has no row in
 * force at `at` yields `tokens_only` ("fallback_unpriced"): usage is never lost for want of a price.
 */
export function decidePrice(
  book: PriceLookup,
  model: string,
  at: number,
  policy: UnknownModelPolicy = DEFAULT_UNKNOWN_MODEL_POLICY,
): PriceDecision {
  const own = book.lookup(model, at);
  if (own) return { action: "price", row: own.row, fallback: false };
  switch (policy.policy) {
    case "reject":
      return {
        action: "reject",
        error: invalid(`no price for model ${JSON.stringify(model)}`, { field: "dimensions.model", model }),
      };
    case "fallback": {
      const stand = policy.fallbackModel === undefined ? undefined : book.lookup(policy.fallbackModel, at);
      return stand
        ? { action: "price", row: stand.row, fallback: true }
        : { action: "tokens_only", reason: "fallback_unpriced" };
    }
    default:
      return { action: "tokens_only", reason: "unknown_model" };
  }
}

/**
 * Everything wrong with a policy. Pass `knows` (e.g. `book.knows.bind(book)`) to also require that
 * the fallback model has a price.
 */
export function unknownModelPolicyProblems(
  policy: UnknownModelPolicy,
  knows?: (model: string) => boolean,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (!["tokens_only", "reject", "fallback"].includes(policy.policy)) {
    problems.push({ path: "policy", message: 'must be "tokens_only", "reject" or "fallback"' });
  }
  if (policy.policy === "fallback") {
    if (typeof policy.fallbackModel !== "string" || policy.fallbackModel.trim() === "") {
      problems.push({ path: "fallbackModel", message: 'is required with policy "fallback"' });
    } else if (knows && !knows(policy.fallbackModel)) {
      problems.push({
        path: "fallbackModel",
        message: `has no price: ${JSON.stringify(policy.fallbackModel)}`,
      });
    }
  } else if (policy.fallbackModel !== undefined) {
    problems.push({ path: "fallbackModel", message: 'is only allowed with policy "fallback"' });
  }
  return problems;
}
