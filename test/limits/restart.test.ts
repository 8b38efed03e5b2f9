import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock } from "@tollgate/core";
import { afterEach, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.js";
import {
  type CustomerLimit,
  check,
  customerLimit,
  customerLimits,
  defineMeters,
  MINUTE,
  outcome,
  put,
  putCustomer,
  record,
  T0,
} from "./helpers.js";

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

async function stop(t: TestServer) {
  await t.close();
  servers.splice(servers.indexOf(t), 1);
}

const byId = (rows: CustomerLimit[]) =>
  Object.fromEntries(rows.map((r) => [`${r.id}${r.group ? JSON.stringify(r.group) : ""}`, r]));

describe("restart", () => {
  it("quota usage and active holds come back exactly; a reservation made before can be committed after", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "tollgate-restart-"));
    dirs.push(dataDir);
    const clock = new ManualClock(T0);
    let t = await start(dataDir, clock);
    await defineMeters(t);
    await put(t, "/v1/plans/pro", {
      name: "Pro",
      limits: [{ id: "monthly", meter: "tokens", amount: 10_000, period: "month" }],
      concurrency_limits: [{ id: "parallel", scope: "customer", max: 3, lease_ttl_seconds: 3600 }],
    });
    await putCustomer(t, "acme", { plan: "pro" });
    await put(t, "/v1/limits/per-model", {
      customer: "acme",
      meter: "tokens",
      amount: 5_000,
      period: { rolling_seconds: 3600 },
      group_by: ["model"],
    });
    await put(t, "/v1/limits/steps", { meter: "steps", amount: 50, period: "day" });

    await record(t, [
      { customer: "acme", values: { tokens_in: 1200, tokens_out: 300 }, dimensions: { model: "gpt-4o" } },
      { customer: "acme", values: { tokens_in: 700 }, dimensions: { model: "claude" } },
      { customer: "bob", type: "agent.step", values: { steps: 12 } },
    ]);
    const released = await check(t, { customer: "acme", values: { tokens_in: 50 } }, { ttl_seconds: 3600 });
    await t.api("POST", `/v1/reservations/${released.reservation!.id}/release`);
    const r1 = await check(
      t,
      { customer: "acme", values: { tokens_in: 2000 }, dimensions: { model: "gpt-4o" } },
      {
        ttl_seconds: 3600,
      },
    );
    const r2 = await check(
      t,
      { customer: "acme", values: { tokens_in: 900 }, dimensions: { model: "claude" } },
      {
        ttl_seconds: 3600,
      },
    );
    const r3 = await check(
      t,
      { customer: "acme", type: "agent.step", values: { steps: 8 } },
      { ttl_seconds: 3600 },
    );
    for (const r of [r1, r2, r3]) expect(r.allowed).toBe(true);

    const before = byId(await customerLimits(t, "acme"));
    expect(before.monthly).toMatchObject({ used: 2200, reserved: 2900 });
    expect(before['per-model{"model":"gpt-4o"}']).toMatchObject({ used: 1500, reserved: 2000 });
    expect(before['per-model{"model":"claude"}']).toMatchObject({ used: 700, reserved: 900 });
    expect(before.steps).toMatchObject({ used: 12, reserved: 8 });
    expect(before.parallel).toMatchObject({ used: 3 });

    await stop(t);
    clock.advance(10 * MINUTE);
    t = await start(dataDir, clock);

    const after = byId(await customerLimits(t, "acme"));
    for (const id of Object.keys(before)) {
      expect(after[id], id).toBeDefined();
      const { used, reserved, remaining, limit } = before[id]!;
      expect(after[id], id).toMatchObject({ used, reserved, remaining, limit });
    }
    // The restored holds and slots decide checks exactly as before.
    const full = await check(t, { customer: "acme", values: { tokens_in: 1 } }, { ttl_seconds: 60 });
    expect(full.code).toBe("CONCURRENCY_LIMIT_EXCEEDED");
    expect(outcome(full, "monthly")).toMatchObject({
      used: 2200,
      reserved: 2900,
      remaining: 10_000 - 5100 - 1,
    });
    expect((await check(t, { customer: "x", type: "agent.step", values: { steps: 31 } })).code).toBe(
      "LIMIT_EXCEEDED",
    );
    expect((await check(t, { customer: "x", type: "agent.step", values: { steps: 30 } })).allowed).toBe(true);

    // Commit and release what was reserved before the restart.
    const c1 = await t.api("POST", `/v1/reservations/${r1.reservation!.id}/commit`, {
      event: { values: { tokens_in: 1500, tokens_out: 100 } },
    });
    expect(c1.status).toBe(200);
    expect(c1.body).toMatchObject({ state: "committed", accepted: 1 });
    expect((await t.api("POST", `/v1/reservations/${r2.reservation!.id}/release`)).status).toBe(200);
    const c3 = await t.api("POST", `/v1/reservations/${r3.reservation!.id}/commit`, {});
    expect(c3.status).toBe(200);
    expect((await t.api("POST", `/v1/reservations/${released.reservation!.id}/commit`, {})).status).toBe(409);
    expect(await customerLimit(t, "acme", "monthly")).toMatchObject({ used: 3800, reserved: 0 });
    expect(await customerLimit(t, "acme", "per-model", { model: "gpt-4o" })).toMatchObject({
      used: 3100,
      reserved: 0,
    });
    expect(await customerLimit(t, "acme", "per-model", { model: "claude" })).toMatchObject({
      used: 700,
      reserved: 0,
    });
    expect(await customerLimit(t, "acme", "steps")).toMatchObject({ used: 20, reserved: 0 });
    expect(await customerLimit(t, "acme", "parallel")).toMatchObject({ used: 0 });

    // A commit retried after another restart answers the same and counts once.
    await stop(t);
    t = await start(dataDir, clock);
    const again = await t.api("POST", `/v1/reservations/${r1.reservation!.id}/commit`, {
      event: { values: { tokens_in: 1500, tokens_out: 100 } },
    });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(c1.body);
    expect(await customerLimit(t, "acme", "monthly")).toMatchObject({ used: 3800, reserved: 0 });
  });

  it("a reservation whose TTL passed while the server was down holds nothing after the restart", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "tollgate-restart-"));
    dirs.push(dataDir);
    const clock = new ManualClock(T0);
    let t = await start(dataDir, clock);
    await defineMeters(t);
    await putCustomer(t, "acme");
    await put(t, "/v1/limits/cap", { customer: "acme", meter: "tokens", amount: 100, period: "month" });
    await put(t, "/v1/concurrency-limits/one", { customer: "acme", scope: "customer", max: 1 });
    const r = await check(t, { customer: "acme", values: { tokens_in: 100 } }, { ttl_seconds: 60 });
    expect(r.allowed).toBe(true);
    await stop(t);
    clock.advance(61_000);
    t = await start(dataDir, clock);
    const next = await check(t, { customer: "acme", values: { tokens_in: 100 } }, { ttl_seconds: 60 });
    expect(next.allowed).toBe(true);
    expect(outcome(next, "cap").reserved).toBe(0);
    expect((await t.api("GET", `/v1/reservations/${r.reservation!.id}`)).body.state).toBe("expired");
  });
});
