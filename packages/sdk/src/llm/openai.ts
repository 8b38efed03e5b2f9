import { admit, instrument, interceptPathsTyped, type LlmMeterOptions } from "./metered.js";
import { countTokens, estimateMessages, textOf } from "./tokens.js";
import { fromOpenAIChat, fromOpenAIEmbeddings, fromOpenAIResponses } from "./usage.js";

// biome-ignore lint/suspicious/noExplicitAny: request and response bodies are the provider's
type Any = any;

/**
 * Wraps an `openai` client (v4–v6) so that `chat.completions.create`, `responses.create` and
 * `embeddings.create` are checked and reserved with an estimate (o200k tokens of the input, the call's
 * max tokens for the output), then committed with the usage the response reports, streaming included
 * (`stream_options.include_usage` is turned on; its extra chunk is hidden unless the caller asked for it).
 * A denied call throws TollgateLimitError and never reaches OpenAI; a failed call releases its hold.
 * Other methods pass through unchanged.
 *
 * Streams are metered through their async iterator (`for await`, `toReadableStream()`); `tee()` bypasses it.
 */
export function wrapOpenAI<T extends object>(client: T, options: LlmMeterOptions): T {
  const provider = "openai";
  const maxOut = (p: Any) =>
    p.max_completion_tokens ?? p.max_tokens ?? p.max_output_tokens ?? options.defaultMaxOutputTokens ?? 0;
  return interceptPathsTyped(client, {
    "chat.completions.create": async (original, params: Any, reqOptions: Any) => {
      const call = await admit(options, provider, params.model, {
        tokens_in: estimateMessages(params.messages),
        tokens_out: maxOut(params),
      });
      const wantsUsage = params.stream_options?.include_usage === true;
      const sent = params.stream
        ? { ...params, stream_options: { ...params.stream_options, include_usage: true } }
        : params;
      let res: Any;
      try {
        res = await original(sent, reqOptions);
      } catch (error) {
        await call.release();
        throw error;
      }
      if (!params.stream) {
        await call.commit(fromOpenAIChat(res.usage), res.model);
        return res;
      }
      let usage: Any;
      let model: string | undefined;
      let out = 0;
      let chunks = 0;
      instrument(
        res,
        (chunk: Any) => {
          chunks++;
          model ??= chunk.model;
          if (chunk.usage) usage = chunk.usage;
          for (const choice of chunk.choices ?? []) {
            out += countTokens(choice.delta?.content ?? "");
            for (const tc of choice.delta?.tool_calls ?? []) out += countTokens(tc.function?.arguments ?? "");
          }
          return wantsUsage || !(chunk.usage && (chunk.choices ?? []).length === 0);
        },
        async () => {
          if (usage) await call.commit(fromOpenAIChat(usage), model);
          else if (chunks > 0)
            // Cut short (abandoned or failed mid-way): charge what was generated so far.
            await call.commit({ tokens_in: estimateMessages(params.messages), tokens_out: out }, model);
          else await call.release();
        },
      );
      return res;
    },
    "responses.create": async (original, params: Any, reqOptions: Any) => {
      const input =
        estimateMessages(params.input) + (params.instructions ? countTokens(String(params.instructions)) : 0);
      const call = await admit(options, provider, params.model, {
        tokens_in: input,
        tokens_out: maxOut(params),
      });
      let res: Any;
      try {
        res = await original(params, reqOptions);
      } catch (error) {
        await call.release();
        throw error;
      }
      if (!params.stream) {
        await call.commit(fromOpenAIResponses(res.usage), res.model);
        return res;
      }
      let usage: Any;
      let model: string | undefined;
      let out = 0;
      let events = 0;
      instrument(
        res,
        (event: Any) => {
          events++;
          if (event.type === "response.output_text.delta") out += countTokens(event.delta ?? "");
          if (event.response?.model) model = event.response.model;
          if (event.response?.usage) usage = event.response.usage;
          return true;
        },
        async () => {
          if (usage) await call.commit(fromOpenAIResponses(usage), model);
          else if (events > 0) await call.commit({ tokens_in: input, tokens_out: out }, model);
          else await call.release();
        },
      );
      return res;
    },
    "embeddings.create": async (original, params: Any, reqOptions: Any) => {
      const inputs = Array.isArray(params.input) ? params.input : [params.input];
      const estimate = inputs.reduce(
        (s: number, i: unknown) =>
          s + (typeof i === "string" ? countTokens(i) : Array.isArray(i) ? i.length : countTokens(textOf(i))),
        0,
      );
      const call = await admit(options, provider, params.model, { tokens_in: estimate, tokens_out: 0 });
      let res: Any;
      try {
        res = await original(params, reqOptions);
      } catch (error) {
        await call.release();
        throw error;
      }
      await call.commit(fromOpenAIEmbeddings(res.usage), res.model);
      return res;
    },
  });
}
