import { countTokens as count } from "gpt-tokenizer";

const OPTIONS = { disallowedSpecial: new Set<string>() };
/** Tokens a chat message adds beyond its text (role and separators, as OpenAI counts them). */
const MESSAGE_OVERHEAD = 4;

/** o200k_base token count of a text; special-token markers in user text are counted as plain text. */
export function countTokens(text: string): number {
  if (text.length === 0) return 0;
  try {
    return count(text, OPTIONS);
  } catch {
    return Math.ceil(text.length / 4);
  }
}

/** Text of a message content in any provider's shape: a string, or parts with `text`. */
export function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map(textOf).join("\n");
  if (content && typeof content === "object") {
    const c = content as Record<string, unknown>;
    if (typeof c.text === "string") return c.text;
    if (c.content !== undefined) return textOf(c.content);
    if (typeof c.input === "object") return JSON.stringify(c.input);
  }
  return "";
}

/** An estimate of the input tokens of a list of chat messages (plus an optional system prompt). */
export function estimateMessages(messages: unknown, system?: unknown): number {
  let total = system === undefined ? 0 : countTokens(textOf(system)) + MESSAGE_OVERHEAD;
  if (Array.isArray(messages)) {
    for (const m of messages)
      total += countTokens(textOf((m as { content?: unknown })?.content)) + MESSAGE_OVERHEAD;
  } else if (messages !== undefined) {
    total += countTokens(textOf(messages));
  }
  return total;
}
