import type { Values } from "../types.js";

/**
 * Provider usage in Tollgate's convention (packages/core/src/pricing/README.md, "Tokens"): `tokens_in`
 * is all input tokens, cached included, `cached_tokens_in` the cached part; `tokens_out` all output
 * tokens, reasoning included, `reasoning_tokens` that part. Optional values appear only when reported.
 */

const n = (v: unknown): number | undefined =>
  typeof v === "number" && Number.isFinite(v) && v >= 0 ? Math.round(v) : undefined;

// biome-ignore lint/suspicious/noExplicitAny: provider usage objects are read defensively
type Raw = any;

/** OpenAI chat completions and embeddings: prompt_tokens / completion_tokens already include the parts. */
export function fromOpenAIChat(u: Raw): Values {
  const values: Values = { tokens_in: n(u?.prompt_tokens) ?? 0, tokens_out: n(u?.completion_tokens) ?? 0 };
  const cached = n(u?.prompt_tokens_details?.cached_tokens);
  if (cached !== undefined) values.cached_tokens_in = cached;
  const reasoning = n(u?.completion_tokens_details?.reasoning_tokens);
  if (reasoning !== undefined) values.reasoning_tokens = reasoning;
  return values;
}

/** OpenAI Responses API: input_tokens / output_tokens with their details. */
export function fromOpenAIResponses(u: Raw): Values {
  const values: Values = { tokens_in: n(u?.input_tokens) ?? 0, tokens_out: n(u?.output_tokens) ?? 0 };
  const cached = n(u?.input_tokens_details?.cached_tokens);
  if (cached !== undefined) values.cached_tokens_in = cached;
  const reasoning = n(u?.output_tokens_details?.reasoning_tokens);
  if (reasoning !== undefined) values.reasoning_tokens = reasoning;
  return values;
}

/** OpenAI embeddings: input only. */
export function fromOpenAIEmbeddings(u: Raw): Values {
  return { tokens_in: n(u?.prompt_tokens) ?? n(u?.total_tokens) ?? 0, tokens_out: 0 };
}

/** Anthropic: input_tokens excludes cache reads and writes, so they are added back. */
export function fromAnthropic(u: Raw): Values {
  const read = n(u?.cache_read_input_tokens) ?? 0;
  const write = n(u?.cache_creation_input_tokens) ?? 0;
  const values: Values = {
    tokens_in: (n(u?.input_tokens) ?? 0) + read + write,
    tokens_out: n(u?.output_tokens) ?? 0,
  };
  if (u?.cache_read_input_tokens !== undefined && u?.cache_read_input_tokens !== null)
    values.cached_tokens_in = read;
  return values;
}

/** Vercel AI SDK (LanguageModelV3Usage): totals include cache reads/writes and reasoning. */
export function fromAiSdk(u: Raw): Values {
  const values: Values = {
    tokens_in: n(u?.inputTokens?.total) ?? n(u?.inputTokens) ?? 0,
    tokens_out: n(u?.outputTokens?.total) ?? n(u?.outputTokens) ?? 0,
  };
  const cached = n(u?.inputTokens?.cacheRead);
  if (cached !== undefined) values.cached_tokens_in = cached;
  const reasoning = n(u?.outputTokens?.reasoning);
  if (reasoning !== undefined) values.reasoning_tokens = reasoning;
  return values;
}

/** LangChain usage_metadata: input_tokens includes cache reads (every integration adds them in). */
export function fromLangChain(u: Raw): Values {
  const values: Values = { tokens_in: n(u?.input_tokens) ?? 0, tokens_out: n(u?.output_tokens) ?? 0 };
  const cached = n(u?.input_token_details?.cache_read);
  if (cached !== undefined) values.cached_tokens_in = cached;
  const reasoning = n(u?.output_token_details?.reasoning);
  if (reasoning !== undefined) values.reasoning_tokens = reasoning;
  return values;
}
