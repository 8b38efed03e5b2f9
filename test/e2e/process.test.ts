import { readFileSync } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { readTrace } from "../support/azure.js";
import { type ApiResponse, call } from "../support/server.js";
import {
  BIN,
  cleanEnv,
  cleanup,
  freePort,
  REPO_ROOT,
  run,
  type ServeProc,
  serve,
  sleep,
  stop,
  tempDir,
} from "./proc.js";

/**
 * `tollgate` as users run it: real processes (node packages/cli/bin/tollgate.js, and `npx tollgate`), real
 * signals, a data folder that outlives the process. Loopback only; every child is killed after each test.
 */

const ADMIN_KEY = "tg_e2e_admin_0123456789abcdef";
const EXAMPLE_CONFIG = join(REPO_ROOT, "examples/tollgate.yaml");

afterEach(cleanup, 15_000);

const api = (
  p: { url: string },
  method: string,
  path: string,
  body?: unknown,
  key: string | null = ADMIN_KEY,
) => call(p.url, method, path, body, { key });

const serveWithKey = (dataDir: string, extra: string[] = []) =>
  serve(["--data", dataDir, ...extra], { env: cleanEnv({ TOLLGATE_ADMIN_KEY: ADMIN_KEY }) });

const cli = (args: string[], env: Record<string, string> = {}) =>
  run(process.execPath, [BIN, ...args], { env: cleanEnv(env), timeoutMs: 20_000 });

function expect2xx(res: ApiResponse, status: number) {
  expect(res.status, res.text).toBe(status);
  return res.body;
}

async function putMeters(p: ServeProc) {
  expect2xx(await api(p, "PUT", "/v1/meters/n", { event_type: "llm.completion", aggregation: "count" }), 201);
  expect2xx(
    await api(p, "PUT", "/v1/meters/tokens_in", {
      event_type: "llm.completion",
      aggregation: "sum",
      value: "tokens_in",
    }),
    201,
  );
}

/** One number per group of a meter query over all time. */
async function meterBy(p: ServeProc, meter: string, groupBy?: string): Promise<Map<string, number>> {
  const res = await api(p, "GET", `/v1/meters/${meter}/query${groupBy ? `?group_by=${groupBy}` : ""}`);
  const rows = expect2xx(res, 200).data as { value: number; groups: Record<string, string> }[];
  return new Map(rows.map((r) => [groupBy ? r.groups[groupBy]! : "", r.value]));
}

/** Batches of real requests (the Azure code trace), each event tagged with its batch. */
function makeBatches(count: number, size: number, tag: string) {
  const trace = readTrace("code");
  const batches: { name: string; tokensIn: number; events: object[] }[] = [];
  for (let b = 0; b < count; b++) {
    const name = `${tag}_${String(b).padStart(2, "0")}`;
    let tokensIn = 0;
    const events = [];
    for (let i = 0; i < size; i++) {
      const row = trace[(b * size + i) % trace.length]!;
      tokensIn += row.contextTokens;
      events.push({
        id: `${name}_${i}`,
        type: "llm.completion",
        customer: `cust_${i % 5}`,
        timestamp: row.iso,
        values: { tokens_in: row.contextTokens, tokens_out: row.generatedTokens },
        dimensions: { batch: name },
      });
    }
    batches.push({ name, tokensIn, events });
  }
  return batches;
}

describe("tollgate serve as a process", () => {
  it("(a) SIGKILL right after the last 202: every acknowledged event survives; a resend is all duplicates", async () => {
    const data = tempDir();
    const first = await serveWithKey(data);
    await putMeters(first);
    const batches = makeBatches(20, 500, "k");

    let acked = 0;
    let killedAt = -1;
    const answers = await Promise.all(
      batches.map(async (b) => {
        const res = await api(first, "POST", "/v1/events", { events: b.events });
        if (res.status === 202 && ++acked === batches.length) {
          first.signal("SIGKILL"); // no await between the last acknowledgement and the kill
          killedAt = Date.now();
        }
        return res;
      }),
    );
    for (const res of answers) expect(res.body).toEqual({ accepted: 500, duplicates: 0 });
    expect(killedAt).toBeGreaterThan(0);
    expect(await first.exited).toEqual({ code: null, signal: "SIGKILL" });

    const second = await serveWithKey(data);
    const perBatch = await meterBy(second, "n", "batch");
    expect(perBatch).toEqual(new Map(batches.map((b) => [b.name, 500])));
    const tokensIn = await meterBy(second, "tokens_in");
    expect(tokensIn.get("")).toBe(batches.reduce((s, b) => s + b.tokensIn, 0));

    const again = await Promise.all(
      batches.map((b) => api(second, "POST", "/v1/events", { events: b.events })),
    );
    for (const res of again) expect(expect2xx(res, 202)).toEqual({ accepted: 0, duplicates: 500 });
    expect((await meterBy(second, "n")).get("")).toBe(10_000);
    expect(await stop(second)).toEqual({ code: 0, signal: null });
  });

  it("(a') SIGKILL with requests in flight: acknowledged batches are whole, the rest absent or whole", async () => {
    const data = tempDir();
    const first = await serveWithKey(data);
    await putMeters(first);
    const batches = makeBatches(30, 500, "m");

    const acked = new Set<string>();
    await Promise.all(
      batches.map(async (b) => {
        try {
          const res = await api(first, "POST", "/v1/events", { events: b.events });
          if (res.status === 202) acked.add(b.name);
          if (acked.size === 10) first.signal("SIGKILL");
        } catch {
          // the connection died with the process
        }
      }),
    );
    await first.exited;
    expect(acked.size).toBeGreaterThanOrEqual(10);

    const second = await serveWithKey(data);
    const perBatch = await meterBy(second, "n", "batch");
    for (const name of acked) expect(perBatch.get(name), name).toBe(500);
    for (const [name, n] of perBatch) expect(n, name).toBe(500); // a batch is all or nothing

    const again = await Promise.all(
      batches.map((b) => api(second, "POST", "/v1/events", { events: b.events })),
    );
    for (const [i, res] of again.entries()) {
      const stored = perBatch.has(batches[i]!.name);
      expect(expect2xx(res, 202)).toEqual(
        stored ? { accepted: 0, duplicates: 500 } : { accepted: 500, duplicates: 0 },
      );
    }
    expect((await meterBy(second, "n")).get("")).toBe(15_000);
  });

  it("(b) SIGTERM drains: a request in flight still gets its 202, the process exits 0, the events persist", async () => {
    const data = tempDir();
    const first = await serveWithKey(data);
    await putMeters(first);
    const [batch] = makeBatches(1, 1_000, "t");
    const body = Buffer.from(JSON.stringify({ events: batch!.events }));
    expect(body.length).toBeGreaterThan(100_000);

    // The server has taken the request (its 100 Continue proves it) and half the body is on the wire
    // when SIGTERM arrives. The client keeps connections alive for a minute, as many do: the drain must
    // not wait for it to hang up.
    const agent = new Agent({ keepAlive: true, timeout: 60_000 });
    const { port } = new URL(first.url);
    const req = httpRequest({
      agent,
      host: "127.0.0.1",
      port: Number(port),
      method: "POST",
      path: "/v1/events",
      headers: {
        authorization: `Bearer ${ADMIN_KEY}`,
        "content-type": "application/json",
        "content-length": body.length,
        expect: "100-continue",
      },
    });
    const taken = new Promise<void>((resolve) => req.once("continue", resolve));
    const answer = new Promise<{ status: number; text: string; connection: string | undefined }>(
      (resolve, reject) => {
        req.on("response", (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (s: string) => {
            text += s;
          });
          res.on("end", () => resolve({ status: res.statusCode!, text, connection: res.headers.connection }));
        });
        req.on("error", reject);
      },
    );
    req.flushHeaders();
    await taken;
    const half = Math.floor(body.length / 2);
    await new Promise<void>((resolve) => req.write(body.subarray(0, half), () => resolve()));
    await sleep(100);
    first.signal("SIGTERM");
    await sleep(300);
    expect(first.child.exitCode).toBeNull(); // still draining
    // No new work is taken while draining.
    const late = await call(first.url, "GET", "/health").catch((e: Error) => e);
    if (!(late instanceof Error)) expect(late.status).toBe(503);
    req.end(body.subarray(half));

    const res = await answer;
    const answeredAt = Date.now();
    expect(res.status, res.text).toBe(202);
    expect(JSON.parse(res.text)).toEqual({ accepted: 1_000, duplicates: 0 });
    expect(res.connection).toBe("close");
    expect(await first.exited).toEqual({ code: 0, signal: null });
    expect(Date.now() - answeredAt).toBeLessThan(3_000); // not held open by the idle connection
    agent.destroy();

    const second = await serveWithKey(data);
    expect((await meterBy(second, "n", "batch")).get(batch!.name)).toBe(1_000);
  });

  it("(c) a first start without TOLLGATE_ADMIN_KEY prints a working admin key once; the next start prints none", async () => {
    const data = tempDir();
    const first = await serve(["--data", data], { env: cleanEnv() });
    const keyLine = /Admin key for workspace "default".*\n\s*\n\s+(\S+)\s*\n/;
    for (let i = 0; i < 100 && !keyLine.test(first.stdout()); i++) await sleep(20); // printed after the banner
    const m = keyLine.exec(first.stdout());
    expect(m, first.stdout()).not.toBeNull();
    const key = m![1]!;
    expect((await api(first, "GET", "/v1/api-keys", undefined, key)).status).toBe(200);
    expect((await api(first, "GET", "/v1/api-keys", undefined, "tg_not_a_key")).status).toBe(401);
    expect(await stop(first)).toEqual({ code: 0, signal: null });
    expect(first.stdout().split(key).length - 1).toBe(1);

    const second = await serve(["--data", data], { env: cleanEnv() });
    const keys = await api(second, "GET", "/v1/api-keys", undefined, key);
    expect(keys.status).toBe(200);
    expect(keys.body.data.filter((k: { role: string }) => k.role === "admin")).toHaveLength(1);
    expect(await stop(second)).toEqual({ code: 0, signal: null });
    expect(second.stdout()).not.toContain("Admin key");
    expect(second.stdout()).not.toContain(key);
    expect(second.stdout()).toContain("Tollgate listening on");
  });

  it("(d) `keys create --role service` prints a key that records events and may not create keys", async () => {
    const data = tempDir();
    const server = await serveWithKey(data);
    await putMeters(server);

    const created = await cli(["keys", "create", "--role", "service", "--data", data]);
    expect(created.code, created.stderr).toBe(0);
    const lines = created.stdout.trim().split("\n");
    expect(lines).toHaveLength(1);
    const key = lines[0]!;
    expect(created.stderr).toContain("created service key");

    const ev = await api(
      server,
      "POST",
      "/v1/events",
      { events: [{ id: "svc_1", type: "llm.completion", customer: "acme", values: { tokens_in: 7 } }] },
      key,
    );
    expect(expect2xx(ev, 202)).toEqual({ accepted: 1, duplicates: 0 });
    const q = await api(server, "GET", "/v1/meters/tokens_in/query?customer=acme", undefined, key);
    expect(expect2xx(q, 200).data[0].value).toBe(7);
    const denied = await api(server, "POST", "/v1/api-keys", { name: "x", role: "admin" }, key);
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe("FORBIDDEN");
    const meter = await api(server, "PUT", "/v1/meters/x", { event_type: "a", aggregation: "count" }, key);
    expect(meter.status).toBe(403);
  });

  it("(e) `apply -f` creates, then updates without changing anything; `serve --config` applies the same file", async () => {
    const file = parseYaml(readFileSync(EXAMPLE_CONFIG, "utf8")) as Record<
      "meters" | "plans" | "customers" | "prices",
      Record<string, Record<string, unknown>>
    >;
    const ids = (section: "meters" | "plans" | "customers") =>
      Object.keys(file[section]).map((id) => `${section}/${id}`);
    // Limits come as lists (one id per scope), applied after the maps.
    const lists = parseYaml(readFileSync(EXAMPLE_CONFIG, "utf8")) as Record<
      "limits" | "rate_limits",
      ({ id: string; customer?: string; plan?: string } & Record<string, unknown>)[]
    >;
    const listIds = (section: "limits" | "rate_limits") => lists[section].map((l) => `${section}/${l.id}`);
    expect(listIds("limits").length).toBeGreaterThan(0);
    // Prices come first (meters and limits may be over cost); the pricing settings last.
    const all = [
      ...Object.keys(file.prices as object).map((m) => `prices/${m}`),
      ...ids("meters"),
      ...ids("plans"),
      ...ids("customers"),
      ...listIds("limits"),
      ...listIds("rate_limits"),
    ];
    expect(ids("meters")).toEqual([
      "meters/tokens_in",
      "meters/tokens_out",
      "meters/tokens",
      "meters/requests",
      "meters/steps",
      "meters/spend",
    ]);

    const server = await serveWithKey(tempDir());
    const apply = () => cli(["apply", "-f", EXAMPLE_CONFIG, "--url", server.url, "--key", ADMIN_KEY]);

    const first = await apply();
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout.trim().split("\n")).toEqual([...all.map((id) => `created ${id}`), "updated pricing"]);
    const afterFirst = await definitions(server, file);
    expectMatchesFile(afterFirst, file);
    // Each listed limit exists in its scope with the file's fields.
    for (const [section, route] of [
      ["limits", "limits"],
      ["rate_limits", "rate-limits"],
    ] as const) {
      for (const { id, ...body } of lists[section]) {
        const owner = body.customer ? `?customer=${body.customer}` : body.plan ? `?plan=${body.plan}` : "";
        const got = expect2xx(await api(server, "GET", `/v1/${route}/${id}${owner}`), 200);
        expect(got, `${section}/${id}`).toMatchObject({ id, ...body });
      }
    }

    const second = await apply();
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout.trim().split("\n")).toEqual([
      ...all.map((id) => `updated ${id}`),
      "updated pricing",
    ]);
    expect(withoutUpdatedAt(await definitions(server, file))).toEqual(withoutUpdatedAt(afterFirst));

    // A wrong key fails loudly and changes nothing.
    const bad = await cli(["apply", "-f", EXAMPLE_CONFIG, "--url", server.url, "--key", "tg_wrong"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("401");

    // The same file at start: everything created, the same definitions.
    const data = tempDir();
    const configured = await serveWithKey(data, ["--config", EXAMPLE_CONFIG]);
    expect(configured.stdout()).toContain(`Applied ${EXAMPLE_CONFIG}: ${all.length} created, 1 updated`);
    const fromConfig = await definitions(configured, file);
    expect(strip(fromConfig)).toEqual(strip(afterFirst));
    expect(await stop(configured)).toEqual({ code: 0, signal: null });

    // Applied again at the next start: updated, unchanged.
    const restarted = await serveWithKey(data, ["--config", EXAMPLE_CONFIG]);
    expect(restarted.stdout()).toContain(`Applied ${EXAMPLE_CONFIG}: 0 created, ${all.length + 1} updated`);
    expect(withoutUpdatedAt(await definitions(restarted, file))).toEqual(withoutUpdatedAt(fromConfig));
  }, 90_000);

  it("(f) `npx tollgate serve` starts from the repo root and answers /health", async () => {
    const port = await freePort();
    const server = await serve(["--data", tempDir(), "--port", String(port)], {
      command: ["npx", "--no-install", "tollgate"],
      cwd: REPO_ROOT,
      env: cleanEnv({ TOLLGATE_ADMIN_KEY: ADMIN_KEY }),
      timeoutMs: 30_000,
    });
    expect(server.url).toBe(`http://127.0.0.1:${port}`);
    const health = await call(server.url, "GET", "/health");
    expect(health.status).toBe(200);
    expect(health.body).toEqual({ status: "ok" });
    expect((await api(server, "GET", "/v1/meters")).status).toBe(200);
  });
});

type Defs = Record<string, Record<string, unknown>>;

/** GET of every meter, plan and customer the file names. */
async function definitions(p: ServeProc, file: Record<string, Record<string, unknown>>): Promise<Defs> {
  const out: Defs = {};
  for (const section of ["meters", "plans", "customers"]) {
    for (const id of Object.keys(file[section] ?? {})) {
      out[`${section}/${id}`] = expect2xx(await api(p, "GET", `/v1/${section}/${id}`), 200);
    }
  }
  return out;
}

function expectMatchesFile(defs: Defs, file: Record<string, Record<string, unknown>>) {
  for (const [key, got] of Object.entries(defs)) {
    const [section, id] = key.split("/") as [string, string];
    expect(got, key).toMatchObject({ id, ...(file[section]![id] as object) });
  }
}

const withoutUpdatedAt = (defs: Defs) =>
  Object.fromEntries(Object.entries(defs).map(([k, { updated_at: _, ...rest }]) => [k, rest]));
const strip = (defs: Defs) =>
  Object.fromEntries(
    Object.entries(defs).map(([k, { updated_at: _u, created_at: _c, ...rest }]) => [k, rest]),
  );
