import { countTokens as count } from "gpt-tokenizer";
import type { SseEvent } from "./sse.js";
import {
  anthropicUsage,
  openaiChatUsage,
  openaiEmbeddingsUsage,
  openaiResponsesUsage,
  type Values,
} from "./usage.js";

// biome-ignore lint/suspicious/noExplicitAny: request and response bodies are the provider's own
type Body = any;

const ENCODE = { disallowedSpecial: new Set<string>() };
const MESSAGE_OVERHEAD = 4;

export function countTokens(text: string): number {
  if (!text) return 0;
  try {
    return count(text, ENCODE);
  } catch {
    return Math.ceil(text.length / 4);
  }
}

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map(textOf).join("\n");
  if (content && typeof content === "object") {
    const c = content as Record<string, unknown>;
    if (typeof c.text === "string") return c.text;
    if (c.content !== undefined) return textOf(c.content);
    if (c.input !== undefined && typeof c.input === "object") return JSON.stringify(c.input);
  }
  return "";
}

function estimateMessages(messages: unknown): number {
  if (!Array.isArray(messages)) return countTokens(textOf(messages));
  let total = 0;
  for (const m of messages)
    total += countTokens(textOf((m as { content?: unknown })?.content)) + MESSAGE_OVERHEAD;
  return total;
}

/** What one streamed event means for metering. */
export interface Observed {
  /** Output tokens the event carries (counted with the o200k tokenizer). */
  tokens: number;
  /** Usage the provider reported in this event (final, or the input part for Anthropic's message_start). */
  usage?: Values;
  /** The provider's final usage: once seen, the call is committed with it. */
  final?: boolean;
  model?: string;
  /** Not forwarded (the usage chunk the proxy asked for on the client's behalf). */
  hide?: boolean;
}

export interface Endpoint {
  provider: "openai" | "anthropic";
  /** Path under the upstream's base URL. */
  path: string;
  estimateIn(body: Body): number;
  requestedOut(body: Body): number | undefined;
  /** The body sent upstream when the call may produce at most `max` output tokens (undefined: no cap). */
  prepare(body: Body, max: number | undefined): Body;
  streaming(body: Body): boolean;
  usage(response: Body): Values;
  /** Per-call stream observer (it may keep state, such as whether the client asked for usage). */
  observer(body: Body): (event: SseEvent) => Observed;
  /** The SSE event that ends a stream the proxy cuts. */
  errorEvent(error: { code: string; message: string; status: number; details?: unknown }): string;
}

const parse = (data: string): Body => {
  try {
    return JSON.parse(data);
  } catch {
    return null;
  }
};

const openaiError = (error: { code: string; message: string; status: number; details?: unknown }) =>
  // The openai client throws an APIError for any `data` with an `error` member, whatever the event name.
  `event: error\ndata: ${JSON.stringify({ type: "error", error: { ...error, type: "tollgate_limit" } })}\n\n`;

export const chatCompletions: Endpoint = {
  provider: "openai",
  path: "/chat/completions",
  estimateIn: (b) => estimateMessages(b.messages),
  requestedOut: (b) => b.max_completion_tokens ?? b.max_tokens ?? undefined,
  prepare(b, max) {
    const out = { ...b };
    if (b.stream === true) out.stream_options = { ...b.stream_options, include_usage: true };
    if (max !== undefined) {
      if (b.max_tokens !== undefined && b.max_completion_tokens === undefined)
        out.max_tokens = Math.min(b.max_tokens, max);
      else out.max_completion_tokens = Math.min(b.max_completion_tokens ?? max, max);
    }
    return out;
  },
  streaming: (b) => b.stream === true,
  usage: (r) => openaiChatUsage(r?.usage),
  observer(b) {
    const wantsUsage = b.stream_options?.include_usage === true;
    return (event) => {
      if (event.data === "[DONE]" || event.data === "") return { tokens: 0 };
      const chunk = parse(event.data);
      if (!chunk) return { tokens: 0 };
      let tokens = 0;
      for (const choice of chunk.choices ?? []) {
        const d = choice.delta ?? {};
        tokens += countTokens(d.content ?? "") + countTokens(d.reasoning_content ?? d.reasoning ?? "");
        for (const tc of d.tool_calls ?? []) tokens += countTokens(tc.function?.arguments ?? "");
      }
      if (chunk.usage) {
        return {
          tokens,
          usage: openaiChatUsage(chunk.usage),
          final: true,
          model: chunk.model,
          hide: !wantsUsage && (chunk.choices ?? []).length === 0,
        };
      }
      return { tokens, model: chunk.model };
    };
  },
  errorEvent: openaiError,
};

export const responses: Endpoint = {
  provider: "openai",
  path: "/responses",
  estimateIn: (b) =>
    estimateMessages(b.input) + countTokens(typeof b.instructions === "string" ? b.instructions : ""),
  requestedOut: (b) => b.max_output_tokens ?? undefined,
  prepare(b, max) {
    if (max === undefined) return b;
    return { ...b, max_output_tokens: Math.min(b.max_output_tokens ?? max, max) };
  },
  streaming: (b) => b.stream === true,
  usage: (r) => openaiResponsesUsage(r?.usage),
  observer() {
    return (event) => {
      const e = parse(event.data);
      if (!e) return { tokens: 0 };
      const type: string = e.type ?? event.event ?? "";
      const tokens = type.endsWith(".delta") && typeof e.delta === "string" ? countTokens(e.delta) : 0;
      if (e.response?.usage) {
        return {
          tokens,
          usage: openaiResponsesUsage(e.response.usage),
          final: true,
          model: e.response.model,
        };
      }
      return { tokens, ...(e.response?.model ? { model: e.response.model } : {}) };
    };
  },
  errorEvent: openaiError,
};

export const embeddings: Endpoint = {
  provider: "openai",
  path: "/embeddings",
  estimateIn(b) {
    const inputs = Array.isArray(b.input) ? b.input : [b.input];
    let total = 0;
    for (const i of inputs) total += typeof i === "string" ? countTokens(i) : Array.isArray(i) ? i.length : 0;
    return total;
  },
  requestedOut: () => 0,
  prepare: (b) => b,
  streaming: () => false,
  usage: (r) => openaiEmbeddingsUsage(r?.usage),
  observer: () => () => ({ tokens: 0 }),
  errorEvent: openaiError,
};

export const anthropicMessages: Endpoint = {
  provider: "anthropic",
  path: "/v1/messages",
  estimateIn: (b) => estimateMessages(b.messages) + (b.system ? countTokens(textOf(b.system)) : 0),
  requestedOut: (b) => b.max_tokens ?? undefined,
  prepare(b, max) {
    if (max === undefined) return b;
    return { ...b, max_tokens: Math.min(b.max_tokens ?? max, max) };
  },
  streaming: (b) => b.stream === true,
  usage: (r) => anthropicUsage(r?.usage),
  observer() {
    let usage: Record<string, unknown> = {};
    return (event) => {
      const e = parse(event.data);
      if (!e) return { tokens: 0 };
      if (e.type === "message_start") {
        usage = { ...e.message?.usage };
        return { tokens: 0, usage: anthropicUsage(usage), model: e.message?.model };
      }
      if (e.type === "content_block_delta") {
        const d = e.delta ?? {};
        return { tokens: countTokens(d.text ?? d.partial_json ?? d.thinking ?? "") };
      }
      if (e.type === "message_delta" && e.usage) {
        // output_tokens is cumulative; newer API versions repeat the input counts here.
        for (const [k, v] of Object.entries(e.usage)) if (v !== null && v !== undefined) usage[k] = v;
        return { tokens: 0, usage: anthropicUsage(usage), final: true };
      }
      return { tokens: 0 };
    };
  },
  errorEvent: (error) =>
    `event: error\ndata: ${JSON.stringify({
      type: "error",
      error: { type: error.status === 402 ? "billing_error" : "rate_limit_error", ...error },
    })}\n\n`,
};
