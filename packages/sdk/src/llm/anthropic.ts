import { admit, instrument, interceptPathsTyped, type LlmMeterOptions } from "./metered.js";
import { countTokens, estimateMessages } from "./tokens.js";
import { fromAnthropic } from "./usage.js";

// biome-ignore lint/suspicious/noExplicitAny: request and response bodies are the provider's
type Any = any;

/**
 * Wraps an `@anthropic-ai/sdk` client so that `messages.create` (plain and `stream: true`) is checked and
 * reserved with an estimate (input by tokenizer, output by `max_tokens`) and committed with the usage
 * Anthropic reports (the `message_start` and final `message_delta` events when streaming), mapped to
 * Tollgate's convention: tokens_in = input + cache reads + cache writes, cached_tokens_in = cache reads.
 * A denied call throws TollgateLimitError and never reaches Anthropic; a failed call releases its hold.
 */
export function wrapAnthropic<T extends object>(client: T, options: LlmMeterOptions): T {
  return interceptPathsTyped(client, {
    "messages.create": async (original, params: Any, reqOptions: Any) => {
      const input = estimateMessages(params.messages, params.system);
      const call = await admit(options, "anthropic", params.model, {
        tokens_in: input,
        tokens_out: params.max_tokens ?? options.defaultMaxOutputTokens ?? 0,
      });
      let res: Any;
      try {
        res = await original(params, reqOptions);
      } catch (error) {
        await call.release();
        throw error;
      }
      if (!params.stream) {
        await call.commit(fromAnthropic(res.usage), res.model);
        return res;
      }
      let usage: Any = null;
      let model: string | undefined;
      let out = 0;
      let finished = false;
      let events = 0;
      instrument(
        res,
        (event: Any) => {
          events++;
          if (event.type === "message_start") {
            model = event.message?.model;
            usage = { ...event.message?.usage };
          } else if (event.type === "message_delta" && event.usage) {
            // The final usage: output_tokens is cumulative; newer APIs repeat the input counts here.
            for (const [k, v] of Object.entries(event.usage))
              if (v !== null && v !== undefined) usage = { ...usage, [k]: v };
            finished = true;
          } else if (event.type === "content_block_delta") {
            out += countTokens(event.delta?.text ?? event.delta?.partial_json ?? event.delta?.thinking ?? "");
          }
          return true;
        },
        async () => {
          if (usage && finished) await call.commit(fromAnthropic(usage), model);
          else if (events > 0)
            await call.commit(
              {
                ...fromAnthropic(usage ?? { input_tokens: input }),
                tokens_out: Math.max(out, usage?.output_tokens ?? 0),
              },
              model,
            );
          else await call.release();
        },
      );
      return res;
    },
  });
}
