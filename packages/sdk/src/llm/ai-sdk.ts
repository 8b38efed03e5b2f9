import type {
  LanguageModelV3CallOptions,
  LanguageModelV3Middleware,
  LanguageModelV3StreamPart,
} from "@ai-sdk/provider";
import { newId } from "../client.js";
import { admit, type LlmMeterOptions } from "./metered.js";
import { countTokens, estimateMessages } from "./tokens.js";
import { fromAiSdk } from "./usage.js";

export interface AiSdkMeterOptions extends LlmMeterOptions {
  /** The `run` dimension of each call (one agent run spans several model calls). @default a new id per call */
  run?: string | (() => string);
}

const estimateIn = (params: LanguageModelV3CallOptions) => estimateMessages(params.prompt);

/**
 * A Vercel AI SDK (v6) language-model middleware: each generate/stream call is checked and reserved
 * with an estimate, then committed with the usage the provider reported (dimensions `model`,
 * `provider`, `run`). A denial throws TollgateLimitError before the provider is called.
 *
 * @example const model = wrapLanguageModel({ model: openai("gpt-4o"), middleware: tollgateAiMiddleware({ tollgate, customer: "acme" }) })
 */
export function tollgateAiMiddleware(options: AiSdkMeterOptions): LanguageModelV3Middleware {
  const withRun = (): LlmMeterOptions => {
    const run =
      options.run === undefined
        ? newId("run")
        : typeof options.run === "function"
          ? options.run()
          : options.run;
    const base = options.dimensions;
    return { ...options, dimensions: () => ({ ...(typeof base === "function" ? base() : base), run }) };
  };
  return {
    specificationVersion: "v3",
    wrapGenerate: async ({ doGenerate, params, model }) => {
      const call = await admit(withRun(), model.provider, model.modelId, {
        tokens_in: estimateIn(params),
        tokens_out: params.maxOutputTokens ?? options.defaultMaxOutputTokens ?? 0,
      });
      try {
        const result = await doGenerate();
        await call.commit(fromAiSdk(result.usage), result.response?.modelId ?? model.modelId);
        return result;
      } catch (error) {
        await call.release();
        throw error;
      }
    },
    wrapStream: async ({ doStream, params, model }) => {
      const input = estimateIn(params);
      const call = await admit(withRun(), model.provider, model.modelId, {
        tokens_in: input,
        tokens_out: params.maxOutputTokens ?? options.defaultMaxOutputTokens ?? 0,
      });
      let result: Awaited<ReturnType<typeof doStream>>;
      try {
        result = await doStream();
      } catch (error) {
        await call.release();
        throw error;
      }
      let out = 0;
      let parts = 0;
      let modelId = model.modelId;
      const settleCut = () =>
        parts > 0 ? call.commit({ tokens_in: input, tokens_out: out }, modelId) : call.release();
      const reader = result.stream.getReader();
      const stream = new ReadableStream<LanguageModelV3StreamPart>({
        async pull(controller) {
          let next: Awaited<ReturnType<typeof reader.read>>;
          try {
            next = await reader.read();
          } catch (error) {
            await settleCut();
            controller.error(error);
            return;
          }
          if (next.done) {
            await settleCut(); // a no-op once committed
            controller.close();
            return;
          }
          const part = next.value;
          parts++;
          if (part.type === "text-delta" || part.type === "reasoning-delta") out += countTokens(part.delta);
          if (part.type === "response-metadata" && part.modelId) modelId = part.modelId;
          if (part.type === "finish") await call.commit(fromAiSdk(part.usage), modelId);
          controller.enqueue(part);
        },
        async cancel(reason) {
          await settleCut();
          await reader.cancel(reason);
        },
      });
      return { ...result, stream };
    },
  };
}
