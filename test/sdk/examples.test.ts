import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanEnv, REPO_ROOT } from "../e2e/proc.js";
import { type ProxyEnv, startProxyEnv } from "../proxy/helpers.js";

/** examples/sdk run as their README says, against a real server (whose proxy talks to the fake upstream). */
let env: ProxyEnv;

beforeAll(async () => {
  env = await startProxyEnv();
});
afterAll(() => env?.close());

function run(command: string, args: string[], extra: Record<string, string>) {
  return new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn(command, args, {
      cwd: REPO_ROOT,
      env: cleanEnv({ TOLLGATE_URL: env.url, TOLLGATE_API_KEY: env.adminKey, ...extra }),
    });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      out += d;
    });
    child.on("exit", (code) => resolve({ code, out }));
  });
}

describe("examples/sdk", () => {
  it("quickstart.ts reserves, commits and records", async () => {
    const { code, out } = await run(process.execPath, ["--import", "tsx", "examples/sdk/quickstart.ts"], {});
    expect(code, out).toBe(0);
    expect(out).toMatch(/reserved rsv_/);
    expect(out).toContain("monthly-tokens: used 2182 of 100000 (ok)");
  });

  it("openai.ts meters a wrapped OpenAI client", async () => {
    env.upstream.scenario = { inputTokens: 10, outputTokens: 5 };
    const { code, out } = await run(process.execPath, ["--import", "tsx", "examples/sdk/openai.ts"], {
      OPENAI_API_KEY: "sk-fake",
      OPENAI_BASE_URL: `${env.upstream.url}/v1`,
    });
    expect(code, out).toBe(0);
    // quickstart recorded 2,182 tokens for acme before; two calls of 15 each here.
    expect(out).toContain("tokens recorded for acme: 2212");
  });

  it("proxy.sh calls the proxy with an end-user key", async () => {
    env.upstream.scenario = { inputTokens: 7, outputTokens: 3 };
    const { code, out } = await run("bash", ["examples/sdk/proxy.sh"], {});
    expect(code, out).toBe(0);
    expect(out).toContain('"object":"chat.completion"');
    expect(env.upstream.requests.at(-1)!.headers.authorization).toBe("Bearer sk-upstream-openai");
  });
});
