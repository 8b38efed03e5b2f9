import { Agent, request } from "undici";
import { afterAll, describe, expect, it } from "vitest";
import { cleanEnv, cleanup, type ServeProc, serve, stop, tempDir } from "../e2e/proc.js";

/**
 * Past capacity, the server sheds load at once with 503 in the API.md shape and Retry-After, keeps
 * answering /health, holds memory bounded, and recovers by itself. The server runs as its own
 * process with a low capacity (32 requests in flight); the test's 300 concurrent clients are far
 * past it.
 */
const KEY = "tg_overload_test_key_0123456789";
let server: ServeProc | undefined;
afterAll(async () => {
  if (server) await stop(server);
  await cleanup();
});

async function rss(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^tollgate_process_resident_memory_bytes (\d+)/m.exec(text)?.[1] ?? Number.NaN);
}

describe("overload", () => {
  it("sheds with 503 + Retry-After, answers /health, keeps memory bounded, recovers", async () => {
    server = await serve(["--data", tempDir(), "--max-in-flight", "32", "--api-rate-limit", "0"], {
      env: cleanEnv({ TOLLGATE_ADMIN_KEY: KEY }),
    });
    const url = server.url;
    const auth = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };
    await fetch(`${url}/v1/meters/tokens`, {
      method: "PUT",
      headers: auth,
      body: JSON.stringify({ event_type: "llm.completion", aggregation: "sum", value: "tokens_in" }),
    });
    const startRss = await rss(url);
    let peakRss = startRss;

    const agent = new Agent({ connections: 300, headersTimeout: 15_000, bodyTimeout: 15_000 });
    const statuses = new Map<number, number>();
    let shedShapeOk = 0;
    let stopAt = Date.now() + 4000;
    let n = 0;
    const worker = async () => {
      while (Date.now() < stopAt) {
        const i = n++;
        const body = JSON.stringify({
          events: Array.from({ length: 10 }, (_, j) => ({
            id: `ov_${i}_${j}`,
            type: "llm.completion",
            customer: `c${i % 50}`,
            values: { tokens_in: 10 },
          })),
        });
        const res = await request(`${url}/v1/events`, {
          method: "POST",
          headers: auth,
          body,
          dispatcher: agent,
        });
        const text = await res.body.text();
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        if (res.statusCode === 503) {
          const err = JSON.parse(text).error;
          if (err.code === "UNAVAILABLE" && err.status === 503 && res.headers["retry-after"] === "1")
            shedShapeOk++;
        }
      }
    };
    const workers = Array.from({ length: 300 }, worker);
    // While it sheds, /health answers, and memory is sampled.
    const probe = new Agent();
    const health: number[] = [];
    while (Date.now() < stopAt) {
      const h = await request(`${url}/health`, { dispatcher: probe });
      await h.body.text();
      health.push(h.statusCode);
      peakRss = Math.max(peakRss, await rss(url));
      await new Promise((r) => setTimeout(r, 200));
    }
    stopAt = 0;
    await Promise.all(workers);
    await agent.close();
    await probe.close();

    const shed = statuses.get(503) ?? 0;
    const accepted = statuses.get(202) ?? 0;
    console.log(
      `overload: ${accepted} batches accepted, ${shed} shed (503); server RSS ${(startRss / 1e6).toFixed(0)} → peak ${(peakRss / 1e6).toFixed(0)} MB`,
    );
    expect(shed).toBeGreaterThan(0);
    expect(shedShapeOk).toBe(shed);
    expect(accepted).toBeGreaterThan(0);
    expect(health.length).toBeGreaterThan(0);
    expect(health.every((s) => s === 200)).toBe(true);
    // Nothing but accepted or shed: no other error, no hung request.
    expect([...statuses.keys()].sort()).toEqual([202, 503]);
    expect(peakRss - startRss).toBeLessThan(300e6);
    // Every accepted batch is stored, exactly once; and the server serves normally again.
    const q = await fetch(`${url}/v1/meters/tokens/query`, { headers: auth });
    expect(((await q.json()) as { data: { value: number }[] }).data[0]!.value).toBe(accepted * 10 * 10);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/tollgate_requests_shed_total\{reason="in_flight"\} [1-9]/);
  }, 90_000);
});
