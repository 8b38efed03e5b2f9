// Two `tollgate serve --redis-cluster` processes on one PostgreSQL schema and a real three-master
// Redis Cluster started by this file: every check is one script in one slot (one hash tag per
// workspace), admission stays exact across processes, and workspaces spread over the nodes.
import { execFileSync } from "node:child_process";
import { Engine } from "@tollgate/core";
import { keyMinter } from "@tollgate/server";
import { PostgresStore } from "@tollgate/store-postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isValidTimeZone } from "../../packages/cli/src/timezone.js";
import { cleanEnv, cleanup, type ServeProc, serve, stop } from "../e2e/proc.js";
import { dropSchema, freshSchema, PG_URL } from "../store/pg.js";
import { nodeOfKey, type RedisCluster, startRedisCluster } from "../support/redis-cluster.js";
import { call } from "../support/server.js";

const ADMIN_KEY = "tg_cluster_admin_key_0123456789ab";
const schema = freshSchema("tg_cluster");
let cluster: RedisCluster;
const servers: ServeProc[] = [];
/** workspace → its admin key; "default" is the servers' own. */
const workspaces = new Map<string, string>([["default", ADMIN_KEY]]);

beforeAll(async () => {
  cluster = await startRedisCluster(3);
  const args = () => [
    "--postgres",
    PG_URL,
    "--postgres-schema",
    schema,
    "--redis",
    cluster.url,
    "--redis-cluster",
    "--api-rate-limit",
    "0",
    "--data",
    "/nonexistent-unused",
  ];
  const env = cleanEnv({ TOLLGATE_ADMIN_KEY: ADMIN_KEY });
  servers.push(await serve(args(), { env, timeoutMs: 40_000 }));
  servers.push(await serve(args(), { env, timeoutMs: 40_000 }));
  // Two more workspaces, chosen so that the three hash tags ({tg|workspace}) sit on three nodes.
  const store = await PostgresStore.open({ url: PG_URL, schema });
  try {
    const engine = new Engine({ store, clock: { now: () => Date.now() }, keys: keyMinter, isValidTimeZone });
    const used = new Set([nodeOfKey(cluster, "{tg|default}")]);
    for (let i = 0; used.size < 3 && i < 200; i++) {
      const node = nodeOfKey(cluster, `{tg|ws-${i}}`);
      if (used.has(node)) continue;
      used.add(node);
      const { adminKey } = await engine.bootstrap(`ws-${i}`);
      workspaces.set(`ws-${i}`, adminKey!);
    }
    expect(used.size).toBe(3);
  } finally {
    await store.close();
  }
}, 120_000);

afterAll(async () => {
  await Promise.all(servers.map((s) => stop(s)));
  await cluster?.stop();
  await cleanup();
  await dropSchema(schema);
}, 60_000);

describe("Redis Cluster", () => {
  it("three workspaces on three nodes: 300 concurrent check+reserve calls each over 2 processes admit exactly the quota's room, the rate limit's and the concurrency limit's", async () => {
    const setups = [...workspaces].map(async ([ws, key]) => {
      const api = (i: number, method: string, path: string, body?: unknown) =>
        call(servers[i % servers.length]!.url, method, path, body, { key });
      expect(
        (await api(0, "PUT", "/v1/meters/requests", { event_type: "call", aggregation: "count" })).status,
      ).toBe(201);
      for (const c of ["a", "b"]) expect((await api(1, "PUT", `/v1/customers/${c}`, {})).status).toBe(201);
      // a: a monthly quota with room for 50; b: 40 concurrent, and a workspace-wide 30/minute guard on
      // key k (the check mixes customer and workspace state: still one slot).
      expect(
        (
          await api(0, "PUT", "/v1/limits/cap", {
            customer: "a",
            meter: "requests",
            amount: 50,
            period: "month",
          })
        ).status,
      ).toBe(201);
      expect(
        (await api(1, "PUT", "/v1/concurrency-limits/slots", { scope: "customer", customer: "b", max: 40 }))
          .status,
      ).toBe(201);
      const rate = await api(0, "PUT", "/v1/rate-limits/per-key", {
        scope: "key",
        limit: 30,
        window_seconds: 60,
        algorithm: "sliding_window",
      });
      expect(rate.status, rate.text).toBe(201);
      return { ws, api };
    });
    const ready = await Promise.all(setups);
    const runs = ready.map(async ({ ws, api }) => {
      const burst = (customer: string, dimensions: Record<string, string> = {}) =>
        Promise.all(
          Array.from({ length: 300 }, (_, i) =>
            api(i, "POST", "/v1/check", {
              event: { type: "call", customer, dimensions },
              reserve: { ttl_seconds: 300 },
            }),
          ),
        );
      const quota = await burst("a");
      expect(
        quota.every((r) => r.status === 200),
        `${ws}: ${quota.find((r) => r.status !== 200)?.text}`,
      ).toBe(true);
      expect(quota.filter((r) => r.body.allowed).length, ws).toBe(50);
      const slots = await burst("b");
      expect(slots.filter((r) => r.body.allowed).length, ws).toBe(40);
      for (const r of slots.filter((r) => !r.body.allowed))
        expect(r.body.code).toBe("CONCURRENCY_LIMIT_EXCEEDED");
      const perKey = await burst("a", { key: "k" });
      // Customer a's quota is full: everything is refused, and the refused checks take nothing.
      expect(perKey.filter((r) => r.body.allowed).length, ws).toBe(0);
      // Commits on the other process free the quota's holds into usage; releases free slots.
      const admitted = quota.filter((r) => r.body.allowed);
      const commits = await Promise.all(
        admitted.map((r, i) => api(i + 1, "POST", `/v1/reservations/${r.body.reservation.id}/commit`, {})),
      );
      expect(commits.every((c) => c.status === 200)).toBe(true);
      const state = (await api(0, "GET", "/v1/customers/a/limits")).body.data;
      expect(state.find((l: { id: string }) => l.id === "cap")).toMatchObject({ used: 50, reserved: 0 });
      const released = slots.filter((r) => r.body.allowed).slice(0, 10);
      await Promise.all(
        released.map((r, i) => api(i, "POST", `/v1/reservations/${r.body.reservation.id}/release`)),
      );
      const again = await burst("b", { key: "k" });
      // 10 slots free again, and key k's 30/minute allows more than that: the slots decide.
      expect(again.filter((r) => r.body.allowed).length, ws).toBe(10);
    });
    await Promise.all(runs);
    // Each master holds keys: the workspaces are spread over the cluster.
    for (const port of cluster.ports) {
      const size = Number(
        execFileSync("redis-cli", ["-h", "127.0.0.1", "-p", String(port), "dbsize"], {
          encoding: "utf8",
        }).trim(),
      );
      expect(size, `node ${port}`).toBeGreaterThan(0);
    }
  }, 180_000);
});
