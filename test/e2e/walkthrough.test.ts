import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.js";
import { cleanEnv, REPO_ROOT, run } from "./proc.js";

/** examples/walkthrough.sh is the README's curl walk-through: run it as written against a real server. */

const SCRIPT = join(REPO_ROOT, "examples/walkthrough.sh");

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t?.close());

const runScript = (env: Record<string, string>) =>
  run("bash", [SCRIPT], { env: cleanEnv(env), timeoutMs: 15_000 });

/** The script's output, section by section ("== 2. …" → the lines under it). */
function sections(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  let current = "";
  for (const line of stdout.split("\n")) {
    const m = /^== (\d+)\./.exec(line);
    if (m) {
      current = m[1]!;
      out.set(current, "");
    } else if (current) out.set(current, (out.get(current) ?? "") + line + "\n");
  }
  return out;
}

const expectedRows = [
  {
    window_start: "2026-01-15T10:00:00Z",
    window_end: "2026-01-15T11:00:00Z",
    value: 1500,
    groups: { model: "gpt-4o" },
  },
  {
    window_start: "2026-01-15T10:00:00Z",
    window_end: "2026-01-15T11:00:00Z",
    value: 1000,
    groups: { model: "gpt-4o-mini" },
  },
  {
    window_start: "2026-01-15T11:00:00Z",
    window_end: "2026-01-15T12:00:00Z",
    value: 600,
    groups: { model: "gpt-4o" },
  },
];

describe("examples/walkthrough.sh", () => {
  it("works as written: meter, three events, hourly usage per model; a rerun only finds duplicates", async () => {
    const env = { TOLLGATE_URL: t.url, TOLLGATE_API_KEY: t.adminKey };
    const first = await runScript(env);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    const s = sections(first.stdout);
    expect([...s.keys()]).toEqual(["1", "2", "3", "4"]);
    expect(JSON.parse(s.get("1")!)).toEqual({ status: "ok" });
    expect(JSON.parse(s.get("2")!)).toMatchObject({
      id: "tokens",
      event_type: "llm.completion",
      aggregation: "sum",
      value: ["tokens_in", "tokens_out"],
    });
    expect(JSON.parse(s.get("3")!)).toEqual({ accepted: 3, duplicates: 0 });
    expect(JSON.parse(s.get("4")!)).toEqual({ data: expectedRows });

    // What the script recorded is what the API reports to anyone else.
    const q = await t.api("GET", "/v1/meters/tokens/query?customer=acme");
    expect(q.body.data.map((r: { value: number }) => r.value)).toEqual([3100]);

    const second = await runScript(env);
    expect(second.code).toBe(0);
    const s2 = sections(second.stdout);
    expect(JSON.parse(s2.get("3")!)).toEqual({ accepted: 0, duplicates: 3 });
    expect(JSON.parse(s2.get("4")!)).toEqual({ data: expectedRows });
  });

  it("says what is missing without a key, and fails on a wrong one", async () => {
    const noKey = await runScript({ TOLLGATE_URL: t.url });
    expect(noKey.code).not.toBe(0);
    expect(noKey.stderr).toContain("TOLLGATE_API_KEY");

    const badKey = await runScript({ TOLLGATE_URL: t.url, TOLLGATE_API_KEY: "tg_wrong" });
    expect(badKey.code).not.toBe(0);
    expect(badKey.stdout).toContain('"UNAUTHORIZED"');
  });
});
