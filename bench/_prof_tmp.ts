import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Engine } from "@tollgate/core";
import { keyMinter } from "@tollgate/server";
import { SqliteStore } from "@tollgate/store-sqlite";
import { isValidTimeZone } from "../packages/cli/src/timezone.js";
const WS = "default";
const KEYS = 10000;
const key = (i: number) => `key_${100_000 + i}`;
const customer = (i: number) => `cust_${100_000 + i}`;
const dir = mkdtempSync(join(tmpdir(), "tollgate-prof-"));
const store = new SqliteStore({ path: join(dir, "tollgate.db") });
const engine = new Engine({ store, clock: { now: () => Date.now() }, keys: keyMinter, isValidTimeZone });
await engine.bootstrap(WS);
await engine.start();
await engine.putMeter(WS, "tokens", { event_type: "llm.completion", aggregation: "sum", value: "tokens" });
const mode = process.argv[2] ?? "3";
const PLAN = {
  name: "Pro",
  rate_limits: [
    { id: "rpm-per-key", scope: "key", limit: 100000, window_seconds: 60, algorithm: "sliding_window" },
    { id: "tpm-per-customer", scope: "customer", value: "tokens", limit: 10_000_000, window_seconds: 60, algorithm: "token_bucket" },
  ].filter((_, i) => mode.includes(String(i))),
  limits: mode.includes("q") ? [{ id: "monthly-tokens", meter: "tokens", amount: 1_000_000_000_000, period: "month" }] : [],
};
await engine.putPlan(WS, "pro", PLAN);
for (let i = 0; i < KEYS; i += 100)
  await Promise.all(Array.from({ length: 100 }, (_, j) => engine.putCustomer(WS, customer(i + j), { plan: "pro" })));
const inputs = Array.from({ length: KEYS }, (_, i) => JSON.parse(JSON.stringify({ event: { type: "llm.completion", customer: customer(i), values: { tokens: 100 }, dimensions: { key: key(i) } } })));
for (let i = 0; i < KEYS; i++) await engine.check(WS, inputs[i]);
for (let r = 0; r < 3; r++) {
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < 2000) { for (let i = 0; i < KEYS; i++) await engine.check(WS, inputs[i]); n += KEYS; }
  console.log(mode, Math.round(n / ((performance.now() - t0) / 1000)), "checks/s");
}
await store.close();
rmSync(dir, { recursive: true, force: true });
