import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock } from "@tollgate/core";
import { afterEach, describe, expect, it } from "vitest";
import {
  type CustomerLimit,
  check,
  customerLimits,
  DAY,
  defineMeters,
  HOUR,
  put,
  putCustomer,
  record,
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

const byId = (rows: CustomerLimit[]) =>
  Object.fromEntries(rows.map((r) => [`${r.id}${r.group ? JSON.stringify(r.group) : ""}`, r]));

const NOW = Date.UTC(2026, 2, 20, 12, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString();

describe("retention", () => {
  it("purges raw events on the plan's schedule; quota usage is the same after a restart (loaded from rollups)", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "tollgate-retention-"));
    dirs.push(dataDir);
    const clock = new ManualClock(NOW);
    let t = await start(dataDir, clock);
    await defineMeters(t);
    await put(t, "/v1/plans/pro", {
      name: "Pro",
      retention_days: 7,
      limits: [
        { id: "monthly", meter: "tokens", amount: 10_000_000, period: "month" },
        { id: "per-model", meter: "tokens", amount: 10_000_000, period: "month", group_by: ["model"] },
        {
          id: "agent-requests",
          meter: "requests",
          amount: 1_000,
          period: "all_time",
          filter: { feature: "agent" },
        },
        { id: "weekly", meter: "tokens", amount: 10_000_000, period: "week" },
      ],
    });
    await put(t, "/v1/plans/keep", { name: "Keep" });
    await putCustomer(t, "acme", { plan: "pro" });
    await putCustomer(t, "tokyo", { plan: "pro", timezone: "Asia/Tokyo" });
    await putCustomer(t, "kept", { plan: "keep" });
    await put(t, "/v1/limits/ws-steps", { meter: "steps", amount: 1_000_000, period: "month" });

    // Usage from March 1 to now (and one event in February, outside the monthly window).
    const models = ["gpt-4o", "claude", "gemini"];
    const features = ["agent", "chat"];
    const events: Parameters<typeof record>[1] = [];
    let n = 0;
    for (let at = Date.UTC(2026, 1, 27, 3); at < NOW; at += 7 * HOUR + 13 * 60_000) {
      for (const customer of ["acme", "tokyo", "kept"]) {
        n++;
        events.push({
          customer,
          timestamp: iso(at),
          values: { tokens_in: 100 + (n % 37) * 11, tokens_out: n % 50 },
          dimensions: {
            model: models[n % 3]!,
            feature: features[n % 2]!,
            workflow: "wf",
            run: `run_${n % 5}`,
          },
        });
        if (n % 4 === 0)
          events.push({ customer, type: "agent.step", timestamp: iso(at), values: { steps: n % 9 } });
      }
    }
    for (let i = 0; i < events.length; i += 500) await record(t, events.slice(i, i + 500));

    const rawCount = () => t.server.store.db.prepare("SELECT count(*) FROM events").pluck().get() as number;
    const totalEvents = events.length; // (the server's own sweeper may have purged some already)
    const before = {
      acme: byId(await customerLimits(t, "acme")),
      tokyo: byId(await customerLimits(t, "tokyo")),
      kept: byId(await customerLimits(t, "kept")),
    };
    expect(before.acme.monthly!.used).toBeGreaterThan(0);
    expect(before.acme["agent-requests"]!.used).toBeGreaterThan(0);
    const usageBefore = (
      await t.api(
        "GET",
        "/v1/usage?from=2026-02-01T00:00:00Z&to=2026-04-01T00:00:00Z&granularity=day&group_by=customer,model",
      )
    ).text;

    // The schedule: the sweeper applies retention once an hour (here by hand, at the clock's now).
    const purged = await t.server.reports.applyRetention();
    expect(purged.customers).toBe(2);
    expect(rawCount()).toBeLessThan(totalEvents);
    const cut = Date.UTC(2026, 2, 13, 12);
    const oldest = t.server.store.db
      .prepare("SELECT min(ts) FROM events WHERE customer IN ('acme', 'tokyo')")
      .pluck()
      .get() as number;
    expect(oldest).toBeGreaterThanOrEqual(cut);
    // The customer on a plan without retention keeps everything.
    expect(
      t.server.store.db.prepare("SELECT min(ts) FROM events WHERE customer = 'kept'").pluck().get(),
    ).toBeLessThan(Date.UTC(2026, 2, 1));
    // Nothing due within the hour; due again an hour later.
    expect(await t.server.reports.retentionDue()).toBeNull();
    clock.advance(HOUR);
    expect(await t.server.reports.retentionDue()).not.toBeNull();
    clock.set(NOW);

    // Reports are unchanged.
    expect(
      (
        await t.api(
          "GET",
          "/v1/usage?from=2026-02-01T00:00:00Z&to=2026-04-01T00:00:00Z&granularity=day&group_by=customer,model",
        )
      ).text,
    ).toBe(usageBefore);

    // Restart: quota usage is rebuilt from the rollups before the horizon and raw events after it.
    await t.close();
    servers.splice(servers.indexOf(t), 1);
    t = await start(dataDir, clock);
    for (const customer of ["acme", "tokyo", "kept"] as const) {
      const after = byId(await customerLimits(t, customer));
      for (const id of Object.keys(before[customer])) {
        const { used, remaining, limit } = before[customer][id]!;
        expect(after[id], `${customer} ${id}`).toMatchObject({ used, remaining, limit });
      }
    }
    // A check decides on the same usage.
    const c = await check(t, { customer: "acme", values: { tokens_in: 1 }, dimensions: { model: "claude" } });
    const monthly = c.limits.find((l) => l.id === "monthly")!;
    expect(monthly.used).toBe(before.acme.monthly!.used);

    // A late event from before the horizon counts once: in the rollups, and not again from raw.
    await record(t, [
      { customer: "acme", timestamp: iso(Date.UTC(2026, 2, 5, 10)), values: { tokens_in: 1000 } },
    ]);
    await t.close();
    servers.splice(servers.indexOf(t), 1);
    t = await start(dataDir, clock);
    expect(byId(await customerLimits(t, "acme")).monthly!.used).toBe(before.acme.monthly!.used + 1000);
    void DAY;
  }, 60_000);
});
