/**
 * The SDK against a running Tollgate (`npx tollgate serve`):
 *   TOLLGATE_URL=http://127.0.0.1:8787 TOLLGATE_API_KEY=tg_... npx tsx examples/sdk/quickstart.ts
 * Defines a meter, a customer and a monthly cap, then reserves, commits and records usage.
 */
import { Tollgate } from "@tollgate/sdk";

const tollgate = new Tollgate({
  // baseUrl and apiKey default to TOLLGATE_URL and TOLLGATE_API_KEY
  failMode: "open", // if Tollgate is unreachable, let calls through and record their usage later
  onFailure: (info) => console.warn(`tollgate ${info.operation}: ${info.action}`, String(info.error)),
});

await tollgate.meters.put("tokens", {
  event_type: "llm.completion",
  aggregation: "sum",
  value: ["tokens_in", "tokens_out"],
});
await tollgate.customers.put("acme", { name: "Acme Inc." });
await tollgate.limits.put("monthly-tokens", {
  customer: "acme",
  meter: "tokens",
  amount: 100_000,
  period: "month",
});

// Before a model call: check every limit and hold the estimate.
const estimate = { type: "llm.completion", customer: "acme", values: { tokens_in: 1200, tokens_out: 500 } };
const check = await tollgate.reserve(estimate, { ttlSeconds: 120 });
if (!check.allowed) {
  console.log(`denied: ${check.code}`);
  process.exit(1);
}
console.log("reserved", check.reservation?.id);

// After it: commit what was really used (the hold is released, the difference reconciled).
const committed = await tollgate.commit(check.reservation!.id, {
  values: { tokens_in: 1180, tokens_out: 342 },
  dimensions: { model: "gpt-4o-mini" },
});
console.log("committed", committed.event_id);

// Fire-and-forget usage: batched, retried with the same ids, flushed at exit.
for (let step = 1; step <= 3; step++) {
  tollgate.record({
    type: "llm.completion",
    customer: "acme",
    values: { tokens_in: 100 * step, tokens_out: 10 * step },
    dimensions: { model: "gpt-4o-mini", workflow: "quickstart", run: "run-1" },
  });
}
await tollgate.flush();

const limits = await tollgate.customers.limits("acme");
for (const l of limits.data) console.log(`${l.id}: used ${l.used} of ${l.limit} (${l.state})`);
