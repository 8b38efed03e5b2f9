import type { LanguageModelV3StreamPart } from "@ai-sdk/provider";
import Anthropic from "@anthropic-ai/sdk";
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { AIMessage, type BaseMessage } from "@langchain/core/messages";
import type { ChatResult } from "@langchain/core/outputs";
import { RunnableLambda } from "@langchain/core/runnables";
import type { UsageEvent } from "@tollgate/core";
import { Tollgate, TollgateLimitError } from "@tollgate/sdk";
import { TollgateCallbackHandler } from "@tollgate/sdk/langchain";
import { tollgateAiMiddleware, wrapAnthropic, wrapOpenAI } from "@tollgate/sdk/llm";
import { generateText, simulateReadableStream, streamText, wrapLanguageModel } from "ai";
import { MockLanguageModelV3 } from "ai/test";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.js";
import { type FakeUpstream, startFakeUpstream } from "./fake-upstream.js";

let t: TestServer;
let upstream: FakeUpstream;
let tollgate: Tollgate;
let n = 0;

beforeAll(async () => {
  t = await startTestServer({ apiRateLimit: null });
  upstream = await startFakeUpstream();
  tollgate = new Tollgate({ baseUrl: t.url, apiKey: t.adminKey, flushOnExit: false });
  await tollgate.meters.put("tokens", {
    event_type: "llm.completion",
    aggregation: "sum",
    value: ["tokens_in", "tokens_out"],
  });
});
afterAll(async () => {
  await tollgate?.close();
  await upstream?.close();
  await t?.close();
});
beforeEach(() => {
  upstream.requests.length = 0;
  upstream.scenario = {};
});

async function newCustomer() {
  const id = `llm-${++n}`;
  await tollgate.customers.put(id, { name: id });
  return id;
}

async function eventsOf(customer: string): Promise<UsageEvent[]> {
  const out: UsageEvent[] = [];
  await t.server.engine.store.scanEvents("default", { types: ["llm.completion"], customer }, (e) => {
    out.push(e);
  });
  return out;
}

const tokens = (e: UsageEvent) => {
  const { cost: _cost, ...rest } = e.values as Record<string, number>;
  return rest;
};

const openaiFor = (customer: string, extra: Partial<Parameters<typeof wrapOpenAI>[1]> = {}) =>
  wrapOpenAI(new OpenAI({ apiKey: "sk-test", baseURL: `${upstream.url}/v1`, maxRetries: 0 }), {
    tollgate,
    customer,
    dimensions: { feature: "chat" },
    ...extra,
  });

const anthropicFor = (customer: string) =>
  wrapAnthropic(new Anthropic({ apiKey: "sk-ant-test", baseURL: upstream.url, maxRetries: 0 }), {
    tollgate,
    customer,
  });

describe("wrapOpenAI", () => {
  it("plain chat: reserves the estimate, commits exactly the reported usage", async () => {
    const customer = await newCustomer();
    upstream.scenario = { inputTokens: 33, outputTokens: 8, cachedTokens: 6, reasoningTokens: 2 };
    const res = await openaiFor(customer).chat.completions.create({
      model: "gpt-4o",
      messages: [{ role: "user", content: "hello there" }],
      max_tokens: 100,
    });
    expect(res.choices[0]!.message.content).toBe(" tok".repeat(8));
    const [e, ...rest] = await eventsOf(customer);
    expect(rest).toHaveLength(0);
    expect(tokens(e!)).toEqual({ tokens_in: 33, tokens_out: 8, cached_tokens_in: 6, reasoning_tokens: 2 });
    expect(e!.dimensions).toEqual({ feature: "chat", provider: "openai", model: "gpt-4o" });
    const limits = await tollgate.customers.limits(customer);
    expect(limits.data.every((l) => l.reserved === 0)).toBe(true);
  });

  it("streaming chat: include_usage is added, its chunk hidden, the usage committed when the stream ends", async () => {
    const customer = await newCustomer();
    upstream.scenario = { inputTokens: 12, outputTokens: 20, chunkTokens: 6 };
    const stream = await openaiFor(customer).chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "stream" }],
      stream: true,
    });
    let text = "";
    for await (const chunk of stream) {
      expect(chunk.choices.length).toBeGreaterThan(0);
      text += chunk.choices[0]!.delta.content ?? "";
    }
    expect(text).toBe(" tok".repeat(20));
    expect(upstream.requests[0]!.body.stream_options).toEqual({ include_usage: true });
    expect((await eventsOf(customer)).map(tokens)).toEqual([
      { tokens_in: 12, tokens_out: 20, cached_tokens_in: 0, reasoning_tokens: 0 },
    ]);
  });

  it("responses (streaming) and embeddings", async () => {
    const customer = await newCustomer();
    upstream.scenario = { inputTokens: 7, outputTokens: 5, cachedTokens: 1, reasoningTokens: 0 };
    const client = openaiFor(customer);
    const stream = await client.responses.create({ model: "gpt-4o-mini", input: "hi", stream: true });
    for await (const _ of stream) {
      // consume
    }
    await client.embeddings.create({ model: "text-embedding-3-small", input: ["a", "b"] });
    expect((await eventsOf(customer)).map(tokens)).toEqual([
      { tokens_in: 7, tokens_out: 5, cached_tokens_in: 1, reasoning_tokens: 0 },
      { tokens_in: 7, tokens_out: 0 },
    ]);
  });

  it("a denied call throws TollgateLimitError and never reaches the provider", async () => {
    const customer = await newCustomer();
    await tollgate.limits.put("tiny", { customer, meter: "tokens", amount: 50, period: "month" });
    const err = await openaiFor(customer)
      .chat.completions.create({
        model: "gpt-4o",
        messages: [{ role: "user", content: "hi" }],
        max_tokens: 500,
      })
      .catch((e) => e);
    expect(err).toBeInstanceOf(TollgateLimitError);
    expect(err.code).toBe("LIMIT_EXCEEDED");
    expect(err.status).toBe(429);
    expect(upstream.requests).toHaveLength(0);
    expect(await eventsOf(customer)).toHaveLength(0);
  });

  it("a provider error releases the hold", async () => {
    const customer = await newCustomer();
    await tollgate.limits.put("cap", { customer, meter: "tokens", amount: 10_000, period: "month" });
    upstream.scenario = { failStatus: 500 };
    const err = await openaiFor(customer)
      .chat.completions.create({
        model: "gpt-4o",
        messages: [{ role: "user", content: "hi" }],
        max_tokens: 500,
      })
      .catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    const cap = (await tollgate.customers.limits(customer)).data.find((l) => l.id === "cap")!;
    expect(cap).toMatchObject({ used: 0, reserved: 0 });
    expect(await eventsOf(customer)).toHaveLength(0);
  });

  it("holds the estimate while the call runs: input by tokenizer, output by max_tokens", async () => {
    const customer = await newCustomer();
    await tollgate.limits.put("cap", { customer, meter: "tokens", amount: 10_000, period: "month" });
    upstream.scenario = { outputTokens: 40, chunkTokens: 10, delayMs: 5 };
    const stream = await openaiFor(customer).chat.completions.create({
      model: "gpt-4o",
      messages: [{ role: "user", content: " tok tok tok" }],
      max_tokens: 700,
      stream: true,
    });
    const cap = (await tollgate.customers.limits(customer)).data.find((l) => l.id === "cap")!;
    expect(cap.reserved).toBe(3 + 4 + 700); // 3 tokens of text, 4 per message, max_tokens
    for await (const _ of stream) {
      // consume
    }
    const after = (await tollgate.customers.limits(customer)).data.find((l) => l.id === "cap")!;
    expect(after).toMatchObject({ reserved: 0, used: 30 + 40 });
  });
});

describe("wrapAnthropic", () => {
  it("plain and streaming: tokens_in = input + cache reads + cache writes", async () => {
    const customer = await newCustomer();
    upstream.scenario = {
      inputTokens: 10,
      cachedTokens: 50,
      cacheWriteTokens: 5,
      outputTokens: 9,
      chunkTokens: 4,
    };
    const client = anthropicFor(customer);
    const params = {
      model: "claude-haiku-4-5",
      max_tokens: 64,
      messages: [{ role: "user" as const, content: "hi" }],
    };
    await client.messages.create(params);
    const stream = await client.messages.create({ ...params, stream: true });
    let text = "";
    for await (const ev of stream)
      if (ev.type === "content_block_delta" && ev.delta.type === "text_delta") text += ev.delta.text;
    expect(text).toBe(" tok".repeat(9));
    const events = await eventsOf(customer);
    expect(events.map(tokens)).toEqual([
      { tokens_in: 65, tokens_out: 9, cached_tokens_in: 50 },
      { tokens_in: 65, tokens_out: 9, cached_tokens_in: 50 },
    ]);
    expect(events[0]!.dimensions).toEqual({ provider: "anthropic", model: "claude-haiku-4-5" });
  });

  it("a denied call never reaches Anthropic; a provider error releases the hold", async () => {
    const customer = await newCustomer();
    await tollgate.limits.put("cap", { customer, meter: "tokens", amount: 100, period: "month" });
    const client = anthropicFor(customer);
    const denied = await client.messages
      .create({ model: "claude-haiku-4-5", max_tokens: 1000, messages: [{ role: "user", content: "hi" }] })
      .catch((e) => e);
    expect(denied).toBeInstanceOf(TollgateLimitError);
    expect(upstream.requests).toHaveLength(0);
    upstream.scenario = { failStatus: 529 };
    const failed = await client.messages
      .create({ model: "claude-haiku-4-5", max_tokens: 50, messages: [{ role: "user", content: "hi" }] })
      .catch((e) => e);
    expect(failed).toBeInstanceOf(Anthropic.APIError);
    expect((await tollgate.customers.limits(customer)).data[0]).toMatchObject({ used: 0, reserved: 0 });
  });
});

describe("Vercel AI SDK middleware", () => {
  const usage = {
    inputTokens: { total: 25, noCache: 15, cacheRead: 10, cacheWrite: 0 },
    outputTokens: { total: 14, text: 10, reasoning: 4 },
  };

  it("generateText and streamText record the reported usage with model, provider and run", async () => {
    const customer = await newCustomer();
    const model = new MockLanguageModelV3({
      provider: "mock-provider",
      modelId: "mock-model",
      doGenerate: {
        content: [{ type: "text", text: "hello" }],
        finishReason: { unified: "stop", raw: "stop" },
        usage,
        warnings: [],
      },
      doStream: {
        stream: simulateReadableStream<LanguageModelV3StreamPart>({
          chunks: [
            { type: "stream-start", warnings: [] },
            { type: "text-start", id: "1" },
            { type: "text-delta", id: "1", delta: "hel" },
            { type: "text-delta", id: "1", delta: "lo" },
            { type: "text-end", id: "1" },
            { type: "finish", finishReason: { unified: "stop", raw: "stop" }, usage },
          ],
        }),
      },
    });
    const wrapped = wrapLanguageModel({
      model,
      middleware: tollgateAiMiddleware({ tollgate, customer, run: "run-42" }),
    });
    const generated = await generateText({ model: wrapped, prompt: "hi" });
    expect(generated.text).toBe("hello");
    const streamed = streamText({ model: wrapped, prompt: "hi" });
    expect(await streamed.text).toBe("hello");
    const events = await eventsOf(customer);
    expect(events.map(tokens)).toEqual([
      { tokens_in: 25, tokens_out: 14, cached_tokens_in: 10, reasoning_tokens: 4 },
      { tokens_in: 25, tokens_out: 14, cached_tokens_in: 10, reasoning_tokens: 4 },
    ]);
    for (const e of events)
      expect(e.dimensions).toEqual({ run: "run-42", provider: "mock-provider", model: "mock-model" });
  });

  it("a denial throws before the model is called", async () => {
    const customer = await newCustomer();
    await tollgate.limits.put("cap", { customer, meter: "tokens", amount: 5, period: "month" });
    let called = 0;
    const model = new MockLanguageModelV3({
      doGenerate: async () => {
        called++;
        throw new Error("must not be called");
      },
    });
    const wrapped = wrapLanguageModel({ model, middleware: tollgateAiMiddleware({ tollgate, customer }) });
    const err = await generateText({
      model: wrapped,
      prompt: "a long prompt ".repeat(10),
      maxRetries: 0,
    }).catch((e) => e);
    expect(String(err)).toMatch(/LIMIT_EXCEEDED/);
    expect(called).toBe(0);
  });
});

/** A chat model that answers with a fixed text and reports usage the way LangChain integrations do. */
class FakeUsageModel extends BaseChatModel {
  _llmType() {
    return "fake-usage";
  }
  override invocationParams() {
    return { model: "fake-model-1" };
  }
  async _generate(_messages: BaseMessage[]): Promise<ChatResult> {
    const message = new AIMessage({
      content: "done",
      usage_metadata: {
        input_tokens: 120,
        output_tokens: 30,
        total_tokens: 150,
        input_token_details: { cache_read: 100 },
        output_token_details: { reasoning: 12 },
      },
    });
    return { generations: [{ text: "done", message }] };
  }
}

describe("LangChain callback handler", () => {
  it("records each model call with model and the outermost run id", async () => {
    const customer = await newCustomer();
    const handler = new TollgateCallbackHandler({ tollgate, customer });
    const model = new FakeUsageModel({});
    const chain = RunnableLambda.from(async (input: string, config) => {
      await model.invoke(input, config);
      return model.invoke(`${input} again`, config);
    });
    await chain.invoke("question", { callbacks: [handler], runId: "8f1b2c3d-0000-4000-8000-000000000001" });
    await awaitAllCallbacks();
    await tollgate.flush();
    const events = await eventsOf(customer);
    expect(events.map(tokens)).toEqual([
      { tokens_in: 120, tokens_out: 30, cached_tokens_in: 100, reasoning_tokens: 12 },
      { tokens_in: 120, tokens_out: 30, cached_tokens_in: 100, reasoning_tokens: 12 },
    ]);
    for (const e of events) {
      expect(e.dimensions).toEqual({ run: "8f1b2c3d-0000-4000-8000-000000000001", model: "fake-model-1" });
    }
  });
});
