/** The LLM proxy enforces model classes: a Free plan's end user cannot reach a medium-class model. */
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ProxyEnv, startProxyEnv } from "../proxy/helpers.js";

let env: ProxyEnv;

beforeAll(async () => {
  env = await startProxyEnv();
  await env.api("PUT", "/v1/meters/tokens", {
    event_type: "llm.completion",
    aggregation: "sum",
    value: ["tokens_in", "tokens_out"],
  });
  await env.api("PUT", "/v1/settings/model-classes", {
    models: { "gpt-4o-mini": "small", "gpt-4o": "medium" },
  });
  await env.api("PUT", "/v1/plans/free", { name: "Free", model_classes: ["small"] });
});
afterAll(() => env?.close());

describe("proxy and model classes", () => {
  it("refuses an excluded class with 403 FEATURE_NOT_INCLUDED before the upstream is called; allows an included one", async () => {
    const key = await env.customerKey("hobbyist");
    await env.api("PUT", "/v1/customers/hobbyist", { plan: "free" });
    const client = new OpenAI({ apiKey: key.key, baseURL: `${env.url}/proxy/openai/v1`, maxRetries: 0 });
    env.upstream.requests.length = 0;
    env.upstream.scenario = { inputTokens: 10, outputTokens: 5 };

    const denied = await client.chat.completions
      .create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] })
      .then(
        () => null,
        (e: { status?: number; error?: unknown }) => e,
      );
    expect(denied?.status).toBe(403);
    expect(JSON.stringify(denied?.error)).toContain("FEATURE_NOT_INCLUDED");
    expect(env.upstream.requests).toHaveLength(0);
    expect((await env.events()).filter((e) => e.customer === "hobbyist")).toHaveLength(0);

    const ok = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hi" }],
    });
    expect(ok.choices.length).toBe(1);
    const events = (await env.events()).filter((e) => e.customer === "hobbyist");
    expect(events).toHaveLength(1);
    expect(events[0]!.dimensions.model_class).toBe("small");
  });
});
