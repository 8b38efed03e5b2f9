/** Plans and entitlements survive a restart: gates, a raise (and its expiry), audit, overage. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock } from "@tollgate/core";
import { afterEach, describe, expect, it } from "vitest";
import {
  customerLimit,
  DAY,
  defineMeters,
  iso,
  put,
  putCustomer,
  record,
  T0,
  TYPE,
} from "../limits/helpers.js";
import { startTestServer, type TestServer } from "../support/server.js";

const dirs: string[] = [];
const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function start(dataDir: string, clock: ManualClock) {
  const t = await startTestServer({ dataDir, clock });
  servers.push(t);
  return t;
}

describe("restart", () => {
  it("model classes, plan terms, a raise and the audit log come back; the raise still expires on time", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "tollgate-plans-restart-"));
    dirs.push(dataDir);
    const clock = new ManualClock(T0);
    let t = await start(dataDir, clock);
    await defineMeters(t);
    await put(t, "/v1/settings/model-classes", { models: { "gpt-4o-mini": "small", "gpt-4o": "medium" } });
    await put(t, "/v1/plans/free", {
      name: "Free",
      model_classes: ["small"],
      features: { agent_keys: false },
      limits: [{ id: "monthly", meter: "tokens", amount: 1000, period: "month" }],
      overage: [{ meter: "tokens", included: 500, unit_price: "0.001" }],
    });
    await putCustomer(t, "acme", { plan: "free" });
    await put(t, "/v1/limits/monthly", {
      customer: "acme",
      meter: "tokens",
      amount: 4000,
      period: "month",
      expires_at: iso(T0 + 2 * DAY),
    });
    await record(t, [{ customer: "acme", values: { tokens_in: 800 }, dimensions: { model: "gpt-4o-mini" } }]);
    const overageBefore = (await t.api("GET", "/v1/customers/acme/overage")).body;
    expect(overageBefore.total_charge).toBe("0.300000");

    await servers.splice(0, 1)[0]!.close();
    t = await start(dataDir, clock);

    const gpt4o = await t.api("POST", "/v1/check", {
      event: { type: TYPE, customer: "acme", values: { tokens_in: 1 }, dimensions: { model: "gpt-4o" } },
    });
    expect(gpt4o.status).toBe(403);
    expect(await customerLimit(t, "acme", "monthly")).toMatchObject({ limit: 4000, used: 800 });
    expect((await t.api("GET", "/v1/customers/acme/overage")).body).toEqual(overageBefore);
    const audit = await t.api("GET", "/v1/audit?customer=acme");
    expect(audit.body.data).toHaveLength(1);

    clock.set(T0 + 2 * DAY);
    expect(await customerLimit(t, "acme", "monthly")).toMatchObject({ limit: 1000, used: 800 });
  });
});
