// `tollgate simulate` as a user runs it: a real process against a real server, a proposed
// tollgate.yaml on disk, the result as JSON, CSV and a table.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ManualClock } from "@tollgate/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.js";

const run = promisify(execFile);
const BIN = fileURLToPath(new URL("../../packages/cli/bin/tollgate.js", import.meta.url));
const T0 = Date.UTC(2026, 10, 2, 10, 0, 0);

describe("tollgate simulate", () => {
  let t: TestServer;
  const dir = mkdtempSync(join(tmpdir(), "tollgate-simulate-"));
  const proposed = join(dir, "proposed.yaml");

  beforeAll(async () => {
    t = await startTestServer({ clock: new ManualClock(T0 + 86_400_000), apiRateLimit: null });
    expect(
      (
        await t.api("PUT", "/v1/meters/tokens", {
          event_type: "llm.completion",
          aggregation: "sum",
          value: ["tokens_in", "tokens_out"],
        })
      ).status,
    ).toBe(201);
    // acme: 10 requests of 300 tokens in one hour; beta: 2.
    const events = [];
    for (let i = 0; i < 10; i++) {
      events.push({
        id: `a${i}`,
        type: "llm.completion",
        customer: "acme",
        timestamp: new Date(T0 + i * 60_000).toISOString(),
        values: { tokens_in: 200, tokens_out: 100 },
      });
    }
    for (let i = 0; i < 2; i++) {
      events.push({
        id: `b${i}`,
        type: "llm.completion",
        customer: "beta",
        timestamp: new Date(T0 + i * 60_000).toISOString(),
        values: { tokens_in: 200, tokens_out: 100 },
      });
    }
    expect((await t.api("POST", "/v1/events", { events })).status).toBe(202);
    writeFileSync(
      proposed,
      [
        "plans:",
        "  small:",
        "    name: Small",
        "    limits:",
        "      - { id: hourly, meter: tokens, amount: 1500, period: hour }",
        "customers:",
        "  acme: { plan: small }",
        "  beta: { plan: small }",
        "webhooks: { timeout_seconds: 5 }",
        "",
      ].join("\n"),
    );
  }, 60_000);

  afterAll(async () => {
    await t?.close();
  });

  const simulate = (...args: string[]) =>
    run(
      process.execPath,
      [
        BIN,
        "simulate",
        "--config",
        proposed,
        "--from",
        new Date(T0).toISOString(),
        "--to",
        new Date(T0 + 3_600_000).toISOString(),
        "--url",
        t.url,
        "--key",
        t.adminKey,
        ...args,
      ],
      { timeout: 60_000 },
    );

  it("prints JSON, CSV and a table; a 1500-token hourly cap denies acme's 6th to 10th request", async () => {
    const json = JSON.parse((await simulate("--format", "json")).stdout);
    const acme = json.customers.find((c: { customer: string }) => c.customer === "acme");
    expect(acme).toMatchObject({ events: 10, allowed: 5, denied: 5 });
    const hourly = acme.limits.find((l: { limit: string }) => l.limit === "hourly");
    expect(hourly).toMatchObject({
      kind: "quota",
      denied: 5,
      first_hit_at: "2026-11-02T10:05:00Z",
      peak_percent: 100,
      alerts: { warning: 1, critical: 1, exceeded: 1 },
    });
    expect(json.customers.find((c: { customer: string }) => c.customer === "beta")).toMatchObject({
      events: 2,
      denied: 0,
    });

    const csvFile = join(dir, "out.csv");
    await simulate("--format", "csv", "--customers", "beta", "--output", csvFile);
    const lines = readFileSync(csvFile, "utf8").trimEnd().split("\r\n");
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/^beta,2,2,0,0,/);

    const table = (await simulate()).stdout;
    expect(table).toMatch(/^customer\s+limit\s+events\s+denied/);
    expect(table).toMatch(/acme\s+hourly \(quota\)\s+10\s+5/);
    expect(table).toContain("12 events of 2 customers");
  }, 120_000);

  it("fails with the server's message for a bad proposal", async () => {
    writeFileSync(join(dir, "bad.yaml"), "limits:\n  - { id: x, meter: nope, amount: 1, period: day }\n");
    const err = await run(
      process.execPath,
      [
        BIN,
        "simulate",
        "-c",
        join(dir, "bad.yaml"),
        "--from",
        new Date(T0).toISOString(),
        "--to",
        new Date(T0 + 3_600_000).toISOString(),
        "--url",
        t.url,
        "--key",
        t.adminKey,
      ],
      { timeout: 60_000 },
    ).catch((e: { code: number; stderr: string }) => e);
    expect((err as { code: number }).code).toBe(1);
    expect((err as { stderr: string }).stderr).toMatch(/400 .*meter nope does not exist/);
  }, 60_000);
});
