/**
 * What the proxy adds to a call: the same requests sent to the fake upstream directly (the baseline)
 * and through /proxy/openai/v1 (check + reserve, forward, commit), in one process, one run.
 *
 *   npx tsx test/proxy/overhead.ts [requests=2000] [concurrency=16]
 *
 * Prints per-request latency (median, p99) sequentially and throughput at the given concurrency, for a
 * plain chat completion and for a 200-token stream read to its end (8 tokens per event).
 */
import { startProxyEnv } from "./helpers.js";

const total = Number(process.argv[2] ?? 2000);
const concurrency = Number(process.argv[3] ?? 16);

const env = await startProxyEnv();
await env.api("PUT", "/v1/meters/tokens", {
  event_type: "llm.completion",
  aggregation: "sum",
  value: ["tokens_in", "tokens_out"],
});
const { key } = await env.customerKey("bench");
await env.api("PUT", "/v1/limits/cap", { customer: "bench", meter: "tokens", amount: 1e15, period: "month" });

const body = (stream: boolean) =>
  JSON.stringify({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: "How many tokens is this prompt? ".repeat(8) }],
    max_tokens: 300,
    stream,
  });

async function once(url: string, auth: string, stream: boolean): Promise<void> {
  const res = await fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${auth}`, "content-type": "application/json" },
    body: body(stream),
  });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`status ${res.status}`);
}

async function measure(label: string, url: string, auth: string, stream: boolean) {
  for (let i = 0; i < 50; i++) await once(url, auth, stream); // warm-up
  const n = Math.min(total, 500);
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await once(url, auth, stream);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < total) await once(url, auth, stream);
    }),
  );
  const rps = total / ((performance.now() - started) / 1000);
  return { label, p50: times[Math.floor(n / 2)]!, p99: times[Math.floor(n * 0.99)]!, rps };
}

const direct = `${env.upstream.url}/v1/chat/completions`;
const proxied = `${env.url}/proxy/openai/v1/chat/completions`;
const rows = [];
for (const stream of [false, true]) {
  env.upstream.scenario = { inputTokens: 60, outputTokens: stream ? 200 : 20, chunkTokens: 8 };
  const base = await measure(`${stream ? "stream" : "plain"} direct`, direct, "sk", stream);
  const prox = await measure(`${stream ? "stream" : "plain"} via proxy`, proxied, key, stream);
  rows.push(base, { ...prox, ratio: base.rps / prox.rps });
}
for (const r of rows) {
  const ratio = "ratio" in r ? `  (throughput ${(1 / (r.ratio as number)).toFixed(2)}x of direct)` : "";
  console.log(
    `${r.label.padEnd(18)} p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  ${r.rps.toFixed(0)} req/s at ${concurrency}${ratio}`,
  );
}
const events = await env.events();
console.log(`events recorded: ${events.length}`);
await env.close();
