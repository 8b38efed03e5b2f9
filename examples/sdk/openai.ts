/**
 * Every OpenAI call checked, reserved and metered by Tollgate:
 *   TOLLGATE_URL=... TOLLGATE_API_KEY=tg_... OPENAI_API_KEY=sk-... npx tsx examples/sdk/openai.ts
 * (OPENAI_BASE_URL points the client at any OpenAI-compatible server.)
 */
import { Tollgate, TollgateLimitError } from "@tollgate/sdk";
import { wrapOpenAI } from "@tollgate/sdk/llm";
import OpenAI from "openai";

const tollgate = new Tollgate();
await tollgate.meters.put("tokens", {
  event_type: "llm.completion",
  aggregation: "sum",
  value: ["tokens_in", "tokens_out"],
});
await tollgate.customers.put("acme", { name: "Acme Inc." });

// One wrapped client per customer (cheap: a proxy over the same client).
const openai = wrapOpenAI(new OpenAI(), { tollgate, customer: "acme", dimensions: { feature: "example" } });

try {
  const reply = await openai.chat.completions.create({
    model: process.env.OPENAI_MODEL ?? "gpt-4o-mini",
    messages: [{ role: "user", content: "Say hello in five words." }],
    max_tokens: 50,
  });
  console.log(reply.choices[0]?.message.content);

  const stream = await openai.chat.completions.create({
    model: process.env.OPENAI_MODEL ?? "gpt-4o-mini",
    messages: [{ role: "user", content: "Count to five." }],
    stream: true,
  });
  for await (const chunk of stream) process.stdout.write(chunk.choices[0]?.delta.content ?? "");
  process.stdout.write("\n");
} catch (error) {
  if (error instanceof TollgateLimitError)
    console.log(`denied by Tollgate: ${error.code}, retry after ${error.retryAfter}s`);
  else throw error;
}

const rows = await tollgate.meters.query("tokens", { customer: "acme" });
console.log("tokens recorded for acme:", rows.data[0]?.value ?? 0);
