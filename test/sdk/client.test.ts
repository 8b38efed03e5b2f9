import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type FailureInfo, Tollgate } from "@tollgate/sdk";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { type RunningServer, startServer } from "../../packages/cli/src/runtime.js";
import { freePort, REPO_ROOT } from "../e2e/proc.js";
import { call } from "../support/server.js";

const ADMIN = `tg_test_sdk_${Math.random().toString(36).slice(2)}`;
const dirs: string[] = [];
const servers: RunningServer[] = [];

async function tollgateOn(port: number, dataDir: string): Promise<RunningServer> {
  const server = await startServer({ dataDir, port, adminKey: ADMIN, apiRateLimit: null });
  servers.push(server);
  return server;
}

async function stop(server: RunningServer) {
  server.app.server.closeAllConnections();
  await server.close();
}

function dataDir() {
  const dir = mkdtempSync(join(tmpdir(), "tollgate-sdk-"));
  dirs.push(dir);
  return dir;
}

afterEach(async () => {
  for (const s of servers.splice(0)) await stop(s).catch(() => {});
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Sum of a meter over everything the customer recorded, through the API. */
async function sum(url: string, meter: string, customer: string): Promise<number> {
  const res = await call(url, "GET", `/v1/meters/${meter}/query?customer=${customer}`, undefined, {
    key: ADMIN,
  });
  return res.body.data.reduce((s: number, r: { value: number }) => s + r.value, 0);
}

async function setup(url: string) {
  const admin = new Tollgate({ baseUrl: url, apiKey: ADMIN, flushOnExit: false });
  await admin.meters.put("tokens", {
    event_type: "llm.completion",
    aggregation: "sum",
    value: ["tokens_in", "tokens_out"],
  });
  await admin.meters.put("calls", { event_type: "llm.completion", aggregation: "count" });
  await admin.customers.put("acme", { name: "Acme" });
  return admin;
}

describe("fail mode when Tollgate is down or slow", () => {
  it("unreachable: open admits, closed denies with UNAVAILABLE, and the hook hears about it", async () => {
    const port = await freePort();
    const heard: FailureInfo[] = [];
    const client = new Tollgate({
      baseUrl: `http://127.0.0.1:${port}`,
      apiKey: "tg_x",
      timeoutMs: 300,
      onFailure: (i) => heard.push(i),
      flushOnExit: false,
    });
    const event = { type: "llm.completion", customer: "acme", values: { tokens_in: 10 } };
    const closed = await client.check(event);
    expect(closed).toEqual({ allowed: false, code: "UNAVAILABLE", limits: [], degraded: true });
    const open = await client.check(event, { failMode: "open" });
    expect(open).toMatchObject({ allowed: true, degraded: true });
    expect(heard.map((h) => [h.operation, h.failMode, h.action])).toEqual([
      ["check", "closed", "denied"],
      ["check", "open", "allowed"],
    ]);
  });

  it("slow: the fail mode answers within the timeout", async () => {
    // Accepts connections and never answers.
    const sockets: Socket[] = [];
    const silent: Server = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const port = (silent.address() as { port: number }).port;
    try {
      const client = new Tollgate({
        baseUrl: `http://127.0.0.1:${port}`,
        failMode: "open",
        timeoutMs: 200,
        flushOnExit: false,
      });
      const started = performance.now();
      const result = await client.reserve({
        type: "llm.completion",
        customer: "acme",
        values: { tokens_in: 5 },
      });
      const elapsed = performance.now() - started;
      expect(result.allowed).toBe(true);
      expect(result.degraded).toBe(true);
      expect(result.reservation?.id).toMatch(/^rsv_local_/);
      expect(elapsed).toBeGreaterThanOrEqual(190);
      expect(elapsed).toBeLessThan(1000);
      const closed = await client.check(
        { type: "llm.completion", customer: "acme" },
        { failMode: "closed", timeoutMs: 100 },
      );
      expect(closed.allowed).toBe(false);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  it("usage admitted while Tollgate was down is recorded once it is back, exactly once", async () => {
    const port = await freePort();
    const dir = dataDir();
    const url = `http://127.0.0.1:${port}`;
    // Definitions exist before the outage.
    let server = await tollgateOn(port, dir);
    await setup(url);
    const client = new Tollgate({
      baseUrl: url,
      apiKey: ADMIN,
      failMode: "open",
      timeoutMs: 500,
      flushOnExit: false,
      batch: { intervalMs: 60_000 },
    });
    // A reservation taken while up, whose commit happens during the outage.
    const early = await client.reserve({
      type: "llm.completion",
      customer: "acme",
      values: { tokens_in: 100 },
    });
    expect(early.degraded).toBeUndefined();
    await stop(server);

    const during = await client.reserve({
      type: "llm.completion",
      customer: "acme",
      values: { tokens_in: 1 },
    });
    expect(during).toMatchObject({ allowed: true, degraded: true });
    const c1 = await client.commit(during.reservation!.id, { values: { tokens_in: 40, tokens_out: 2 } });
    expect(c1.state).toBe("queued");
    const c2 = await client.commit(early.reservation!.id, { values: { tokens_in: 300, tokens_out: 7 } });
    expect(c2.state).toBe("queued");
    client.record({ type: "llm.completion", customer: "acme", values: { tokens_in: 1000, tokens_out: 50 } });
    await expect(client.flush()).rejects.toThrow(/unreachable/);
    expect(client.recorder.pending).toBe(3);

    server = await tollgateOn(port, dir);
    await client.flush();
    expect(client.recorder.pending).toBe(0);
    expect(await sum(url, "tokens", "acme")).toBe(42 + 307 + 1050);
    expect(await sum(url, "calls", "acme")).toBe(3);
    // Flushing again sends nothing new; nothing is counted twice.
    await client.flush();
    expect(await sum(url, "calls", "acme")).toBe(3);
    const rsv = await call(url, "GET", `/v1/reservations/${early.reservation!.id}`, undefined, {
      key: ADMIN,
    });
    expect(rsv.body.state).toBe("committed");
  });
});

describe("record: batches, retries, exit", () => {
  it("a batch whose answer was lost is retried with the same ids and counted once", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    await tollgateOn(port, dataDir());
    await setup(url);
    let lose = 1;
    const posts: string[] = [];
    // Delivers the request, then loses the answer (as a dropped connection would).
    const flaky: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (String(input).endsWith("/v1/events")) {
        posts.push(String(init?.body));
        if (lose-- > 0) throw new TypeError("fetch failed: socket hang up");
      }
      return res;
    };
    const client = new Tollgate({
      baseUrl: url,
      apiKey: ADMIN,
      fetch: flaky,
      flushOnExit: false,
      batch: { intervalMs: 60_000 },
    });
    for (let i = 0; i < 7; i++)
      client.record({ type: "llm.completion", customer: "acme", values: { tokens_in: 10, tokens_out: i } });
    await expect(client.flush()).rejects.toThrow();
    expect(await sum(url, "calls", "acme")).toBe(7); // it did arrive
    await client.flush();
    expect(posts).toHaveLength(2);
    expect(posts[1]).toBe(posts[0]); // same ids, same bodies
    expect(await sum(url, "calls", "acme")).toBe(7);
    expect(await sum(url, "tokens", "acme")).toBe(70 + 21);
  });

  it("flushes by size and by interval; an invalid event is dropped without losing the rest", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    await tollgateOn(port, dataDir());
    await setup(url);
    const heard: FailureInfo[] = [];
    const client = new Tollgate({
      baseUrl: url,
      apiKey: ADMIN,
      flushOnExit: false,
      onFailure: (i) => heard.push(i),
      batch: { maxEvents: 3, intervalMs: 50 },
    });
    for (let i = 0; i < 3; i++)
      client.record({ type: "llm.completion", customer: "acme", values: { tokens_in: 1 } });
    await until(async () => (await sum(url, "calls", "acme")) === 3);
    client.record({ type: "llm.completion", customer: "acme", values: { tokens_in: 1 } });
    client.record({ type: "llm.completion", customer: "acme", values: { tokens_in: -1 } });
    client.record({ type: "llm.completion", customer: "acme", values: { tokens_in: 1 } });
    await until(async () => client.recorder.pending === 0 && (await sum(url, "calls", "acme")) === 5);
    expect(heard.map((h) => [h.operation, h.action])).toEqual([["record", "dropped"]]);
    await client.close();
  });

  it("flushes what is buffered when the process exits on its own", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    await tollgateOn(port, dataDir());
    await setup(url);
    const script = `
      import { Tollgate } from "@tollgate/sdk";
      const t = new Tollgate({ baseUrl: process.argv[1], apiKey: process.argv[2], batch: { intervalMs: 600000 } });
      for (let i = 0; i < 5; i++) t.record({ type: "llm.completion", customer: "acme", values: { tokens_in: 2 } });
    `;
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", script, url, ADMIN],
      {
        cwd: REPO_ROOT,
        stdio: "inherit",
      },
    );
    const code = await new Promise((r) => child.on("exit", r));
    expect(code).toBe(0);
    expect(await sum(url, "calls", "acme")).toBe(5);
  });
});

async function until(condition: () => Promise<boolean> | boolean, timeoutMs = 5000) {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}
