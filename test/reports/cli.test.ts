import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { ManualClock } from "@tollgate/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, cleanEnv } from "../e2e/proc.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { csvRows, expectedRows, replay, type TraceEvent, traceEvents } from "./support.js";

const run = promisify(execFile);
const FROM = Date.UTC(2023, 10, 16, 0);
const TO = Date.UTC(2023, 10, 17, 0);

let t: TestServer;
let dataDir: string;
let events: TraceEvent[];

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "tollgate-export-"));
  t = await startTestServer({ dataDir, clock: new ManualClock(Date.UTC(2023, 10, 20)) });
  events = traceEvents();
  await replay(t, events);
}, 120_000);

afterAll(async () => {
  await t?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const args = ["--from", "2023-11-16T00:00:00Z", "--to", "2023-11-17T00:00:00Z", "--format", "csv"];

describe("tollgate export", () => {
  it("writes the report as CSV from the data folder, and the same over HTTP", async () => {
    const groupBy = ["model", "customer"];
    const local = await run(
      process.execPath,
      [BIN, "export", ...args, "--granularity", "hour", "--group-by", groupBy.join(","), "--data", dataDir],
      { env: cleanEnv(), maxBuffer: 64 << 20 },
    );
    const expected = expectedRows(events, { granularity: "hour", groupBy, from: FROM, to: TO });
    expect(csvRows(local.stdout, groupBy)).toEqual(expected);
    expect(local.stderr).toBe(""); // no TTY: no progress bar

    const remote = await run(
      process.execPath,
      [BIN, "export", ...args, "--granularity", "hour", "--group-by", groupBy.join(","), "--url", t.url],
      { env: cleanEnv({ TOLLGATE_API_KEY: t.adminKey }), maxBuffer: 64 << 20 },
    );
    expect(remote.stdout).toBe(local.stdout);
  }, 60_000);

  it("rebuild-rollups recomputes the same numbers", async () => {
    const before = (
      await t.api(
        "GET",
        "/v1/usage?from=2023-11-16T00:00:00Z&to=2023-11-17T00:00:00Z&group_by=workflow,feature&format=csv",
      )
    ).text;
    await t.close();
    const out = await run(process.execPath, [BIN, "rebuild-rollups", "--data", dataDir], { env: cleanEnv() });
    expect(out.stdout).toMatch(new RegExp(`from ${events.length} raw events`));
    t = await startTestServer({ dataDir, clock: new ManualClock(Date.UTC(2023, 10, 20)) });
    const after = (
      await t.api(
        "GET",
        "/v1/usage?from=2023-11-16T00:00:00Z&to=2023-11-17T00:00:00Z&group_by=workflow,feature&format=csv",
      )
    ).text;
    expect(after).toBe(before);
  }, 60_000);

  it("refuses a range that is not whole hours", async () => {
    await expect(
      run(process.execPath, [BIN, "export", "--from", "2023-11-16T00:30:00Z", "--data", dataDir], {
        env: cleanEnv(),
      }),
    ).rejects.toMatchObject({ stderr: expect.stringMatching(/whole hour/) });
  });
});
