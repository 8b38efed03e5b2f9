/**
 * Provider usage in Tollgate's convention (core pricing README, "Tokens"): tokens_in includes cached
 * tokens (Anthropic: input + cache reads + cache writes), tokens_out includes reasoning; the parts are
 * recorded only when the provider reports them. The SDK's llm/usage.ts maps the same way.
 */
// biome-ignore lint/suspicious/noExplicitAny: provider usage objects are read defensively
type Raw = any;
export type Values = Record<string, number>;

const n = (v: unknown): number | undefined =>
  typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : undefined;

export function openaiChatUsage(u: Raw): Values {
  const values: Values = { tokens_in: n(u?.prompt_tokens) ?? 0, tokens_out: n(u?.completion_tokens) ?? 0 };
  const cached = n(u?.prompt_tokens_details?.cached_tokens);
  if (cached !== undefined) values.cached_tokens_in = cached;
  const reasoning = n(u?.completion_tokens_details?.reasoning_tokens);
  if (reasoning !== undefined) values.reasoning_tokens = reasoning;
  return values;
}

export function openaiResponsesUsage(u: Raw): Values {
  const values: Values = { tokens_in: n(u?.input_tokens) ?? 0, tokens_out: n(u?.output_tokens) ?? 0 };
  const cached = n(u?.input_tokens_details?.cached_tokens);
  if (cached !== undefined) values.cached_tokens_in = cached;
  const reasoning = n(u?.output_tokens_details?.reasoning_tokens);
  if (reasoning !== undefined) values.reasoning_tokens = reasoning;
  return values;
}

export function openaiEmbeddingsUsage(u: Raw): Values {
  return { tokens_in: n(u?.prompt_tokens) ?? n(u?.total_tokens) ?? 0, tokens_out: 0 };
}

export function anthropicUsage(u: Raw): Values {
  const read = n(u?.cache_read_input_tokens) ?? 0;
  const write = n(u?.cache_creation_input_tokens) ?? 0;
  const values: Values = {
    tokens_in: (n(u?.input_tokens) ?? 0) + read + write,
    tokens_out: n(u?.output_tokens) ?? 0,
  };
  if (n(u?.cache_read_input_tokens) !== undefined) values.cached_tokens_in = read;
  return values;
}
