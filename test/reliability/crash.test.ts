import { afterAll, describe, expect, it } from "vitest";
import { cleanEnv, cleanup, type ServeProc, serve, sleep, tempDir } from "../e2e/proc.js";
import { dropSchema, freshSchema, PG_URL } from "../store/pg.js";
import { readTrace } from "../support/azure.js";

/**
 * Crash safety: a client streams 200,000 events (batches of 1,000, 8 in flight, each retried on any
 * error with the same ids) while the server is killed with SIGKILL and restarted on the same data
 * several times. At the end the meter totals equal the client's totals exactly: nothing acknowledged
 * was lost, nothing retried was counted twice. Events are the Azure conversation trace, repeated.
 */
const KEY = "tg_crash_test_key_0123456789abcdef";
const EVENTS = 200_000;
const BATCH = 1000;
const KILLS = 4;

let server: ServeProc | undefined;
afterAll(async () => {
  server?.signal("SIGKILL");
  await cleanup();
});

const pgSchema = freshSchema("crash");
afterAll(() => dropSchema(pgSchema));

describe.each([
  ["SQLite", [] as string[]],
  ["PostgreSQL", ["--postgres", PG_URL, "--postgres-schema", pgSchema]],
])("crash safety (%s)", (_name, storeArgs) => {
  it(`${EVENTS.toLocaleString("en")} events through ${KILLS} SIGKILLs: totals exact`, async () => {
    const dataDir = tempDir();
    const env = cleanEnv({ TOLLGATE_ADMIN_KEY: KEY });
    const args = ["--data", dataDir, "--api-rate-limit", "0", ...storeArgs];
    server = await serve(args, { env });
    const auth = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };
    for (const [id, body] of [
      ["tokens_in", { event_type: "llm.completion", aggregation: "sum", value: "tokens_in" }],
      ["n", { event_type: "llm.completion", aggregation: "count" }],
    ] as const) {
      const res = await fetch(`${server.url}/v1/meters/${id}`, {
        method: "PUT",
        headers: auth,
        body: JSON.stringify(body),
      });
      expect(res.status).toBe(201);
    }

    const trace = readTrace("conv");
    let expectedTokens = 0;
    const batches: string[] = [];
    for (let b = 0; b < EVENTS / BATCH; b++) {
      const events = [];
      for (let i = 0; i < BATCH; i++) {
        const n = b * BATCH + i;
        const row = trace[n % trace.length]!;
        expectedTokens += row.contextTokens;
        events.push({
          id: `crash_${n}`,
          type: "llm.completion",
          customer: `c${n % 20}`,
          values: { tokens_in: row.contextTokens, tokens_out: row.generatedTokens },
        });
      }
      batches.push(JSON.stringify({ events }));
    }

    let url = server.url;
    let next = 0;
    let retries = 0;
    let acked = 0;
    const send = async () => {
      for (;;) {
        const b = next++;
        if (b >= batches.length) return;
        for (;;) {
          try {
            const res = await fetch(`${url}/v1/events`, {
              method: "POST",
              headers: auth,
              body: batches[b],
              signal: AbortSignal.timeout(5_000),
            });
            if (res.status === 202) {
              await res.json();
              acked++;
              break;
            }
            await res.text();
          } catch {
            // connection refused or reset while the server is down: retry the same batch
          }
          retries++;
          await sleep(50);
        }
      }
    };
    const clients = Array.from({ length: 8 }, send);
    // The killer: SIGKILL whenever a further slice of the batches is acknowledged, then restart.
    for (let k = 1; k <= KILLS; k++) {
      const target = Math.floor((batches.length * k) / (KILLS + 1));
      while (acked < target) await sleep(20);
      const victim = server!;
      victim.signal("SIGKILL");
      expect((await victim.exited).signal).toBe("SIGKILL");
      server = await serve(args, { env });
      url = server.url;
    }
    await Promise.all(clients);
    expect(acked).toBe(batches.length);
    expect(retries).toBeGreaterThan(0);

    const total = async (meter: string) => {
      let res = await fetch(`${url}/v1/meters/${meter}/query`, { headers: auth });
      // A query over 200,000 raw events holds the event loop a while: the next request may be shed.
      for (let i = 0; i < 20 && res.status === 503; i++) {
        await sleep(Number(res.headers.get("retry-after") ?? 1) * 1000);
        res = await fetch(`${url}/v1/meters/${meter}/query`, { headers: auth });
      }
      const text = await res.text();
      expect(res.status, text).toBe(200);
      return (JSON.parse(text) as { data: { value: number }[] }).data[0]!.value;
    };
    expect(await total("n")).toBe(EVENTS);
    expect(await total("tokens_in")).toBe(expectedTokens);
    console.log(`crash: ${EVENTS} events, ${KILLS} SIGKILLs, ${retries} retried requests; totals exact`);
  }, 240_000);
});
