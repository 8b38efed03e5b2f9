import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { expectError } from "../support/server.js";
import { type ProxyEnv, startProxyEnv, tokenValues, until } from "./helpers.js";

let env: ProxyEnv;
let n = 0;

beforeAll(async () => {
  env = await startProxyEnv();
  await env.api("PUT", "/v1/meters/tokens", {
    event_type: "llm.completion",
    aggregation: "sum",
    value: ["tokens_in", "tokens_out"],
  });
  await env.api("PUT", "/v1/meters/output", {
    event_type: "llm.completion",
    aggregation: "sum",
    value: "tokens_out",
  });
});
afterAll(() => env?.close());
beforeEach(() => {
  env.upstream.requests.length = 0;
  env.upstream.scenario = {};
});

async function customer() {
  const id = `cust-${++n}`;
  const key = await env.customerKey(id);
  return { customer: id, keyId: key.id, key: key.key };
}

const openai = (key: string) =>
  new OpenAI({ apiKey: key, baseURL: `${env.url}/proxy/openai/v1`, maxRetries: 0 });
const anthropic = (key: string) =>
  new Anthropic({ apiKey: key, baseURL: `${env.url}/proxy/anthropic`, maxRetries: 0 });

async function eventsOf(customer: string) {
  return (await env.events()).filter((e) => e.customer === customer);
}

async function onlyEvent(customer: string) {
  const events = await eventsOf(customer);
  expect(events).toHaveLength(1);
  return events[0]!;
}

async function limitState(customer: string, id: string) {
  const res = await env.api("GET", `/v1/customers/${customer}/limits`);
  return res.body.data.find((l: { id: string }) => l.id === id);
}

describe("proxy: records exactly the usage the upstream reported", () => {
  it("OpenAI chat completion, plain", async () => {
    const c = await customer();
    // A quota with plenty of room: the request goes upstream as it was (no max tokens added).
    await env.api("PUT", "/v1/limits/roomy", {
      customer: c.customer,
      meter: "tokens",
      amount: 10_000_000,
      period: "month",
    });
    env.upstream.scenario = { inputTokens: 41, outputTokens: 17, cachedTokens: 9, reasoningTokens: 5 };
    const res = await openai(c.key).chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "Say tok seventeen times" }],
    });
    expect(res.choices[0]!.message.content).toBe(" tok".repeat(17));
    const e = await onlyEvent(c.customer);
    expect(tokenValues(e)).toEqual({
      tokens_in: 41,
      tokens_out: 17,
      cached_tokens_in: 9,
      reasoning_tokens: 5,
    });
    expect(e.dimensions).toEqual({ model: "gpt-4o-mini", key: c.keyId, provider: "openai" });
    // The provider sees Tollgate's key, never the end user's.
    const sent = env.upstream.requests[0]!;
    expect(sent.headers.authorization).toBe("Bearer sk-upstream-openai");
    expect(sent.body.messages[0].content).toBe("Say tok seventeen times");
    expect(sent.body).toEqual({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "Say tok seventeen times" }],
    });
  });

  it("OpenAI chat completion, streaming: usage from the final chunk, which the client did not ask for is hidden", async () => {
    const c = await customer();
    env.upstream.scenario = { inputTokens: 23, outputTokens: 31, cachedTokens: 4, chunkTokens: 4 };
    const stream = await openai(c.key).chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "stream please" }],
      stream: true,
    });
    let text = "";
    for await (const chunk of stream) {
      expect(chunk.choices.length).toBeGreaterThan(0);
      text += chunk.choices[0]!.delta.content ?? "";
    }
    expect(text).toBe(" tok".repeat(31));
    expect(env.upstream.requests[0]!.body.stream_options).toEqual({ include_usage: true });
    const e = await onlyEvent(c.customer);
    expect(tokenValues(e)).toEqual({
      tokens_in: 23,
      tokens_out: 31,
      cached_tokens_in: 4,
      reasoning_tokens: 0,
    });
  });

  it("OpenAI chat completion, streaming with include_usage: the client gets the usage chunk", async () => {
    const c = await customer();
    env.upstream.scenario = { inputTokens: 8, outputTokens: 6 };
    const stream = await openai(c.key).chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let usage: unknown;
    for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
    expect(usage).toMatchObject({ prompt_tokens: 8, completion_tokens: 6 });
    expect(tokenValues(await onlyEvent(c.customer))).toMatchObject({ tokens_in: 8, tokens_out: 6 });
  });

  it("OpenAI responses, plain and streaming", async () => {
    const c = await customer();
    env.upstream.scenario = { inputTokens: 12, outputTokens: 9, cachedTokens: 2, reasoningTokens: 3 };
    const plain = await openai(c.key).responses.create({ model: "gpt-4o-mini", input: "hello" });
    expect(plain.output_text).toBe(" tok".repeat(9));
    const stream = await openai(c.key).responses.create({
      model: "gpt-4o-mini",
      input: "hello",
      stream: true,
    });
    let text = "";
    for await (const event of stream) if (event.type === "response.output_text.delta") text += event.delta;
    expect(text).toBe(" tok".repeat(9));
    const events = await eventsOf(c.customer);
    expect(events.map(tokenValues)).toEqual([
      { tokens_in: 12, tokens_out: 9, cached_tokens_in: 2, reasoning_tokens: 3 },
      { tokens_in: 12, tokens_out: 9, cached_tokens_in: 2, reasoning_tokens: 3 },
    ]);
  });

  it("OpenAI embeddings", async () => {
    const c = await customer();
    env.upstream.scenario = { inputTokens: 5 };
    const res = await openai(c.key).embeddings.create({ model: "text-embedding-3-small", input: "embed me" });
    expect(res.data[0]!.embedding).toEqual([0.25, -0.5, 0.125]);
    const e = await onlyEvent(c.customer);
    expect(tokenValues(e)).toEqual({ tokens_in: 5, tokens_out: 0 });
    expect(e.dimensions).toEqual({ model: "text-embedding-3-small", key: c.keyId, provider: "openai" });
  });

  it("Anthropic messages, plain: tokens_in counts cache reads and writes", async () => {
    const c = await customer();
    env.upstream.scenario = { inputTokens: 20, cachedTokens: 100, cacheWriteTokens: 7, outputTokens: 11 };
    const msg = await anthropic(c.key).messages.create({
      model: "claude-sonnet-4-5",
      max_tokens: 64,
      messages: [{ role: "user", content: "hello" }],
    });
    expect(msg.content[0]).toEqual({ type: "text", text: " tok".repeat(11) });
    const e = await onlyEvent(c.customer);
    expect(tokenValues(e)).toEqual({ tokens_in: 127, tokens_out: 11, cached_tokens_in: 100 });
    expect(e.dimensions).toEqual({ model: "claude-sonnet-4-5", key: c.keyId, provider: "anthropic" });
    const sent = env.upstream.requests[0]!;
    expect(sent.headers["x-api-key"]).toBe("sk-upstream-anthropic");
    expect(sent.headers.authorization).toBeUndefined();
  });

  it("Anthropic messages, streaming: usage from message_start and the final message_delta", async () => {
    const c = await customer();
    env.upstream.scenario = {
      inputTokens: 15,
      cachedTokens: 3,
      cacheWriteTokens: 2,
      outputTokens: 26,
      chunkTokens: 5,
    };
    const stream = await anthropic(c.key).messages.create({
      model: "claude-sonnet-4-5",
      max_tokens: 64,
      messages: [{ role: "user", content: "hello" }],
      stream: true,
    });
    let text = "";
    for await (const event of stream) {
      if (event.type === "content_block_delta" && event.delta.type === "text_delta") text += event.delta.text;
    }
    expect(text).toBe(" tok".repeat(26));
    expect(tokenValues(await onlyEvent(c.customer))).toEqual({
      tokens_in: 20,
      tokens_out: 26,
      cached_tokens_in: 3,
    });
  });
});

describe("proxy: denials and failures", () => {
  it("a denied call answers 429 in the API.md shape with rate-limit headers and never reaches the upstream", async () => {
    const c = await customer();
    await env.api("PUT", "/v1/limits/tiny", {
      customer: c.customer,
      meter: "tokens",
      amount: 10,
      period: "month",
    });
    const res = await fetch(`${env.url}/proxy/openai/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${c.key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x ".repeat(50) }] }),
    });
    const body = await res.json();
    const error = expectError(
      { status: res.status, headers: res.headers, body, text: "" },
      429,
      "LIMIT_EXCEEDED",
    );
    expect(Object.keys(error.details!)).toEqual(["limit", "remaining", "reset_at", "retry_after"]);
    expect(error.details).toMatchObject({ limit: 10, remaining: 10 });
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(res.headers.get("x-ratelimit-limit")).toBe("10");
    expect(res.headers.get("x-ratelimit-remaining")).toBe("10");
    expect(res.headers.get("ratelimit-policy")).toBe('"tiny";q=10');
    // The official client sees a 429 too.
    const err = await openai(c.key)
      .chat.completions.create({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "x ".repeat(50) }],
      })
      .catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err.status).toBe(429);
    expect(env.upstream.requests).toHaveLength(0);
    expect(await eventsOf(c.customer)).toHaveLength(0);
  });

  it("a rate limit per key answers 429 RATE_LIMIT_EXCEEDED before the upstream", async () => {
    const c = await customer();
    await env.api("PUT", "/v1/rate-limits/rpm", {
      customer: c.customer,
      scope: "key",
      limit: 1,
      window_seconds: 60,
    });
    const client = anthropic(c.key);
    const params = {
      model: "claude-sonnet-4-5",
      max_tokens: 16,
      messages: [{ role: "user" as const, content: "hi" }],
    };
    await client.messages.create(params);
    const err = await client.messages.create(params).catch((e) => e);
    expect(err).toBeInstanceOf(Anthropic.APIError);
    expect(err.status).toBe(429);
    expect(err.error.error.code).toBe("RATE_LIMIT_EXCEEDED");
    expect(Number(err.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(env.upstream.requests).toHaveLength(1);
  });

  it("an upstream error releases the hold and records nothing", async () => {
    const c = await customer();
    await env.api("PUT", "/v1/limits/big", {
      customer: c.customer,
      meter: "tokens",
      amount: 100_000,
      period: "month",
    });
    env.upstream.scenario = { failStatus: 500 };
    const err = await openai(c.key)
      .chat.completions.create({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "boom" }],
        max_tokens: 500,
      })
      .catch((e) => e);
    expect(err.status).toBe(500);
    expect(err.error).toMatchObject({ message: "upstream exploded" });
    expect(await limitState(c.customer, "big")).toMatchObject({ used: 0, reserved: 0 });
    expect(await eventsOf(c.customer)).toHaveLength(0);
  });

  it("a stream the upstream breaks off is charged for what was generated, once", async () => {
    const c = await customer();
    env.upstream.scenario = { outputTokens: 100, chunkTokens: 5, breakAfterChunks: 4 };
    const stream = await openai(c.key).chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    });
    let text = "";
    await (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    })().catch(() => {});
    expect(text).toBe(" tok".repeat(20));
    await until(async () => (await eventsOf(c.customer)).length === 1);
    expect(tokenValues((await eventsOf(c.customer))[0]!)).toMatchObject({ tokens_out: 20 });
  });

  it("keys: an admin key cannot use the proxy; an end-user key cannot use /v1", async () => {
    const c = await customer();
    const asAdmin = await fetch(`${env.url}/proxy/openai/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${env.adminKey}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [] }),
    });
    expect(asAdmin.status).toBe(403);
    const onV1 = await env.api("GET", "/v1/meters", undefined, c.key);
    expectError(onV1, 403, "FORBIDDEN");
    const noModel = await fetch(`${env.url}/proxy/openai/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${c.key}`, "content-type": "application/json" },
      body: JSON.stringify({ messages: [] }),
    });
    expect(noModel.status).toBe(400);
    expect(env.upstream.requests).toHaveLength(0);
  });
});

describe("proxy: a stream stops at the customer's hard limit", () => {
  it("2,000 tokens streamed to a customer with room for 500: cut within one chunk, usage = what was delivered", async () => {
    const c = await customer();
    await env.api("PUT", "/v1/limits/out-500", {
      customer: c.customer,
      meter: "output",
      amount: 500,
      period: "month",
    });
    const per = 7;
    env.upstream.scenario = { inputTokens: 40, outputTokens: 2000, chunkTokens: per, delayMs: 1 };
    const stream = await openai(c.key).chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "write a lot" }],
      stream: true,
    });
    let text = "";
    let error: unknown;
    try {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    } catch (e) {
      error = e;
    }
    // Ended cleanly with an error event in the API.md shape.
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).error).toMatchObject({
      code: "LIMIT_EXCEEDED",
      status: 429,
    });
    const delivered = text.split(" tok").length - 1;
    expect(text).toBe(" tok".repeat(delivered));
    expect(delivered).toBeLessThanOrEqual(500);
    expect(delivered).toBeGreaterThan(500 - per);
    // The provider was asked for at most the room, and the stream was stopped early.
    expect(env.upstream.requests[0]!.body.max_completion_tokens).toBe(500);
    await env.upstream.streamDone;
    expect(env.upstream.chunksSent).toBeLessThan(2000 / per);
    const e = await onlyEvent(c.customer);
    expect(e.values.tokens_out).toBe(delivered);
    expect(await limitState(c.customer, "out-500")).toMatchObject({ used: delivered, reserved: 0 });
  });

  it("Responses API: the stream ends with an error event the openai client throws", async () => {
    const c = await customer();
    await env.api("PUT", "/v1/limits/out-50", {
      customer: c.customer,
      meter: "output",
      amount: 50,
      period: "month",
    });
    env.upstream.scenario = { inputTokens: 4, outputTokens: 300, chunkTokens: 4, delayMs: 1 };
    const stream = await openai(c.key).responses.create({ model: "gpt-4o-mini", input: "go", stream: true });
    let text = "";
    const error = await (async () => {
      for await (const ev of stream) if (ev.type === "response.output_text.delta") text += ev.delta;
    })().catch((e) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    const delivered = text.split(" tok").length - 1;
    expect(delivered).toBeLessThanOrEqual(50);
    expect(delivered).toBeGreaterThan(50 - 4);
    expect(env.upstream.requests[0]!.body.max_output_tokens).toBe(50);
    expect((await onlyEvent(c.customer)).values.tokens_out).toBe(delivered);
  });

  it("the room is held: a second call while the first streams cannot spend it again", async () => {
    const c = await customer();
    await env.api("PUT", "/v1/limits/out-300", {
      customer: c.customer,
      meter: "output",
      amount: 300,
      period: "month",
    });
    env.upstream.scenario = { inputTokens: 5, outputTokens: 100, chunkTokens: 2, delayMs: 10 };
    const client = openai(c.key);
    const first = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "one" }],
      stream: true,
    });
    const limit = await limitState(c.customer, "out-300");
    expect(limit).toMatchObject({ used: 0, reserved: 300 });
    const second = await client.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "two" }], stream: true })
      .catch((e) => e);
    expect(second.status).toBe(429);
    expect(second.error).toMatchObject({ code: "LIMIT_EXCEEDED" });
    let text = "";
    for await (const chunk of first) text += chunk.choices[0]?.delta.content ?? "";
    expect(text).toBe(" tok".repeat(100));
    // The hold is reconciled with the actual usage: the rest of the room is free again.
    expect(await limitState(c.customer, "out-300")).toMatchObject({ used: 100, reserved: 0, remaining: 200 });
  });

  it("Anthropic: the stream ends with an error event at the limit", async () => {
    const c = await customer();
    await env.api("PUT", "/v1/limits/out-100", {
      customer: c.customer,
      meter: "output",
      amount: 100,
      period: "month",
    });
    env.upstream.scenario = { inputTokens: 10, outputTokens: 400, chunkTokens: 6 };
    const stream = await anthropic(c.key).messages.create({
      model: "claude-sonnet-4-5",
      max_tokens: 1000,
      messages: [{ role: "user", content: "write" }],
      stream: true,
    });
    let text = "";
    const error = await (async () => {
      for await (const ev of stream)
        if (ev.type === "content_block_delta" && ev.delta.type === "text_delta") text += ev.delta.text;
    })().catch((e) => e);
    expect(error).toBeInstanceOf(Anthropic.APIError);
    const delivered = text.split(" tok").length - 1;
    expect(delivered).toBeLessThanOrEqual(100);
    expect(delivered).toBeGreaterThan(100 - 6);
    expect(env.upstream.requests[0]!.body.max_tokens).toBe(100);
    const e = await onlyEvent(c.customer);
    expect(tokenValues(e)).toMatchObject({ tokens_in: 10, tokens_out: delivered });
  });

  it("a client that disconnects mid-stream is still charged for what was generated", async () => {
    const c = await customer();
    env.upstream.scenario = { inputTokens: 9, outputTokens: 400, chunkTokens: 2, delayMs: 15 };
    const stream = await openai(c.key).chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "slow" }],
      stream: true,
    });
    let received = 0;
    for await (const chunk of stream) {
      received += (chunk.choices[0]?.delta.content ?? "").split(" tok").length - 1;
      if (received >= 10) break; // aborts the HTTP request
    }
    await env.upstream.streamDone;
    await until(async () => (await eventsOf(c.customer)).length === 1);
    const e = await onlyEvent(c.customer);
    expect(e.values.tokens_out).toBeGreaterThanOrEqual(received);
    expect(e.values.tokens_out).toBeLessThan(400);
    expect(e.values.tokens_in).toBeGreaterThan(0);
  });
});

describe("proxy: balances", () => {
  it("no credits left: 402 INSUFFICIENT_BALANCE before the upstream; some left: the stream stops within them", async () => {
    const c = await customer();
    const broke = await customer();
    await env.api("PUT", "/v1/balance-rules/per-output-token", { meter: "output", credits_per_unit: 1 });
    const credit = await env.api("POST", `/v1/customers/${c.customer}/balance/credits`, {
      amount: 300,
      idempotency_key: "grant",
    });
    expect(credit.status, credit.text).toBeLessThan(300);

    const res = await fetch(`${env.url}/proxy/openai/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${broke.key}`, "content-type": "application/json" },
      body: JSON.stringify({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "hi" }],
        max_tokens: 10,
      }),
    });
    const body = await res.json();
    expectError({ status: res.status, headers: res.headers, body, text: "" }, 402, "INSUFFICIENT_BALANCE");
    expect(env.upstream.requests).toHaveLength(0);

    env.upstream.scenario = { inputTokens: 5, outputTokens: 2000, chunkTokens: 5, delayMs: 1 };
    const stream = await openai(c.key).chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "spend it" }],
      stream: true,
    });
    let text = "";
    const error = await (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    })().catch((e) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(error.error).toMatchObject({ code: "INSUFFICIENT_BALANCE", status: 402 });
    const delivered = text.split(" tok").length - 1;
    expect(delivered).toBeGreaterThan(0);
    expect(delivered).toBeLessThanOrEqual(300);
    const e = await onlyEvent(c.customer);
    expect(e.values.tokens_out).toBe(delivered);
    const balance = await env.api("GET", `/v1/customers/${c.customer}/balance`);
    expect(balance.body).toMatchObject({ balance: 300 - delivered, held: 0 });
    await env.api("DELETE", "/v1/balance-rules/per-output-token");
  });
});
