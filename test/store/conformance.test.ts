// One suite, two backends: the storage port's behaviour, run against the embedded SQLite store and
// the PostgreSQL store (real databases; a fresh schema per run). Narrow with STORE=sqlite|postgres.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { EventToStore, ReservationRecord, Store, UsageEvent } from "@tollgate/core";
import { canonicalJson } from "@tollgate/core";
import { PostgresStore } from "@tollgate/store-postgres";
import { SqliteStore } from "@tollgate/store-sqlite";
import { afterEach, describe, expect, it } from "vitest";
import { freshSchema, PG_URL } from "./pg.js";

interface Backend {
  name: string;
  /** A fresh store; `reopen` gives a second handle on the same data (a restart or another process). */
  create(): Promise<{ store: Store; reopen(): Promise<Store>; destroy(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: "sqlite",
    async create() {
      const dir = mkdtempSync(join(tmpdir(), "tollgate-conf-"));
      const path = join(dir, "t.db");
      return {
        store: new SqliteStore({ path }),
        reopen: async () => new SqliteStore({ path }),
        destroy: async () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  },
  {
    name: "postgres",
    async create() {
      const schema = freshSchema();
      const store = await PostgresStore.open({ url: PG_URL, schema });
      return {
        store,
        reopen: () => PostgresStore.open({ url: PG_URL, schema }),
        destroy: async () => {
          const s = await PostgresStore.open({ url: PG_URL, schema });
          await s.dropSchema();
          await s.close();
        },
      };
    },
  },
];

const only = process.env.STORE;
const selected = backends.filter((b) => !only || only === b.name);

function ev(id: string, over: Partial<UsageEvent> = {}): EventToStore {
  const event: UsageEvent = {
    id,
    type: "llm",
    customer: "acme",
    timestamp: 1_000,
    values: { tokens: 5 },
    dimensions: { model: "m" },
    ...over,
  };
  const valuesJson = canonicalJson(event.values);
  const dimensionsJson = canonicalJson(event.dimensions);
  return {
    event,
    fingerprint: canonicalJson([event.type, event.customer, event.timestamp, valuesJson, dimensionsJson]),
    valuesJson,
    dimensionsJson,
  };
}

function reservation(id: string, state: ReservationRecord["state"] = "active"): ReservationRecord {
  return {
    id,
    state,
    customer: "acme",
    event: { type: "llm", values: { tokens: 3 }, dimensions: {} },
    holds: [{ key: "k", amount: 3 }],
    leases: [],
    rateCharges: [],
    createdAt: 1,
    expiresAt: 100,
  };
}

async function scanAll(store: Store, ws = "w", scan = {}) {
  const seen: { id: string; seq: number; ts: number }[] = [];
  const { asOfSeq } = await store.scanEvents(ws, scan, (e, seq) =>
    seen.push({ id: e.id, seq, ts: e.timestamp }),
  );
  return { seen, asOfSeq };
}

for (const backend of selected) {
  describe(`store conformance: ${backend.name}`, () => {
    const cleanups: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const c of cleanups.splice(0)) await c();
    });
    async function setup() {
      const h = await backend.create();
      const extra: Store[] = [];
      cleanups.push(async () => {
        for (const s of extra) await s.close();
        await h.store.close();
        await h.destroy();
      });
      await h.store.ensureWorkspace("w", 1);
      return {
        store: h.store,
        reopen: async () => {
          const s = await h.reopen();
          extra.push(s);
          return s;
        },
      };
    }

    it("workspaces: ensure is idempotent and reports creation", async () => {
      const { store } = await setup();
      const again = await store.ensureWorkspace("w", 5);
      expect(again.created).toBe(false);
      expect(again.workspace).toEqual({ id: "w", name: "w", createdAt: 1 });
      expect((await store.ensureWorkspace("v", 7)).created).toBe(true);
      expect((await store.listWorkspaces()).map((w) => w.id)).toEqual(["w", "v"]);
      expect(await store.getWorkspace("nope")).toBeUndefined();
    });

    it("api keys: insert, find by hash, list by customer, delete only with the right customer", async () => {
      const { store } = await setup();
      const base = { workspaceId: "w", name: "n", prefix: "tg_", createdAt: 1, lastUsedAt: null };
      await store.insertApiKey({ ...base, id: "k1", role: "admin", customerId: null, hash: "h1" });
      await store.insertApiKey({ ...base, id: "k2", role: "customer", customerId: "acme", hash: "h2" });
      expect((await store.findApiKeyByHash("h2"))?.customerId).toBe("acme");
      expect((await store.listApiKeys("w", {})).map((k) => k.id)).toEqual(["k1"]);
      expect((await store.listApiKeys("w", { customerId: "acme" })).map((k) => k.id)).toEqual(["k2"]);
      expect(await store.deleteApiKey("w", "k2")).toBe(false);
      expect(await store.deleteApiKey("w", "k2", "acme")).toBe(true);
      await store.touchApiKey("k1", 42);
      expect((await store.findApiKeyByHash("h1"))?.lastUsedAt).toBe(42);
      await expect(
        store.insertApiKey({ ...base, id: "k3", role: "admin", customerId: null, hash: "h1" }),
      ).rejects.toThrow();
    });

    it("records: upsert keeps createdAt, pages in byte order, delete", async () => {
      const { store } = await setup();
      const a = await store.putRecord("w", "meter", "b", { x: 1, a: [2] }, 10);
      expect(a.created).toBe(true);
      const b = await store.putRecord("w", "meter", "b", { z: 1, a: 2 }, 20);
      expect(b).toEqual({
        record: { id: "b", body: { z: 1, a: 2 }, createdAt: 10, updatedAt: 20 },
        created: false,
      });
      const got = await store.getRecord("w", "meter", "b");
      expect(got).toEqual({ id: "b", body: { z: 1, a: 2 }, createdAt: 10, updatedAt: 20 });
      expect(Object.keys(got!.body as object)).toEqual(["z", "a"]);
      for (const id of ["a", "B", "_", "ä", "a-1"]) await store.putRecord("w", "meter", id, {}, 1);
      await store.putRecord("w", "plan", "a", {}, 1);
      const ids = (await store.listRecords("w", "meter", { limit: 10 })).map((r) => r.id);
      expect(ids).toEqual(["B", "_", "a", "a-1", "b", "ä"]);
      expect((await store.listRecords("w", "meter", { after: "a", limit: 2 })).map((r) => r.id)).toEqual([
        "a-1",
        "b",
      ]);
      expect(await store.deleteRecord("w", "meter", "a")).toBe(true);
      expect(await store.deleteRecord("w", "meter", "a")).toBe(false);
      expect(await store.getRecord("other", "meter", "b")).toBeUndefined();
      expect(await store.listRecords("other", "meter", { limit: 5 })).toEqual([]);
    });

    it("events: idempotent by id, conflicts roll back the whole batch, repeats within a batch", async () => {
      const { store } = await setup();
      const commits: { inserted: number[]; seq: number }[] = [];
      const first = await store.appendEvents("w", [ev("e1"), ev("e2", { timestamp: 500 })], (inserted, seq) =>
        commits.push({ inserted, seq }),
      );
      expect(first).toEqual({ ok: true, accepted: 2, duplicates: 0, inserted: [0, 1] });
      const retry = await store.appendEvents("w", [ev("e3"), ev("e1"), ev("e3")], (inserted, seq) =>
        commits.push({ inserted, seq }),
      );
      expect(retry).toEqual({ ok: true, accepted: 1, duplicates: 2, inserted: [0] });
      expect(commits[1]!.seq).toBeGreaterThan(commits[0]!.seq);
      // A conflict (same id, another body) stores nothing of its batch.
      const conflict = await store.appendEvents("w", [ev("e4"), ev("e2", { values: { tokens: 6 } })], () =>
        commits.push({ inserted: [-1], seq: -1 }),
      );
      expect(conflict).toEqual({ ok: false, conflictIndex: 1, id: "e2" });
      // Within one batch: the same id twice with different bodies is a conflict at the second.
      const inner = await store.appendEvents("w", [ev("e5"), ev("e5", { timestamp: 2 })]);
      expect(inner).toEqual({ ok: false, conflictIndex: 1, id: "e5" });
      expect(commits).toHaveLength(2);
      const { seen } = await scanAll(store);
      expect(seen.map((s) => s.id)).toEqual(["e2", "e1", "e3"]);
    });

    it("events: concurrent batches are grouped, each all-or-nothing, each acknowledged once durable", async () => {
      const { store, reopen } = await setup();
      const batches = Array.from({ length: 40 }, (_, b) =>
        Array.from({ length: 25 }, (_, i) => ev(`b${b}_${i}`, { timestamp: 1_000 + i })),
      );
      // Batch 7 conflicts with batch 3 on one id.
      batches[7]![5] = ev("b3_5", { values: { tokens: 99 } });
      const results = await Promise.all(batches.map((events) => store.appendEvents("w", events)));
      const ok = results.filter((r) => r.ok).length;
      expect(results[7]).toMatchObject({ ok: false, id: "b3_5" });
      expect(ok).toBe(39);
      const other = await reopen();
      const { seen } = await scanAll(other);
      expect(seen).toHaveLength(39 * 25);
      expect(seen.some((s) => s.id.startsWith("b7_"))).toBe(false);
    });

    it("scanEvents: filters, (timestamp, storage order), and values come back as stored", async () => {
      const { store } = await setup();
      await store.appendEvents("w", [
        ev("x1", { timestamp: 30, customer: "a" }),
        ev("x2", { timestamp: 10, customer: "b", type: "other" }),
        ev("x3", { timestamp: 10, customer: "a", values: { tokens: 2 ** 53 - 1 }, dimensions: { k: "ü" } }),
      ]);
      await store.appendEvents("w", [ev("x4", { timestamp: 10, customer: "a" })]);
      const all: UsageEvent[] = [];
      await store.scanEvents("w", {}, (e) => all.push(e));
      expect(all.map((e) => e.id)).toEqual(["x2", "x3", "x4", "x1"]);
      expect(all[1]).toEqual({
        id: "x3",
        type: "llm",
        customer: "a",
        timestamp: 10,
        values: { tokens: 2 ** 53 - 1 },
        dimensions: { k: "ü" },
      });
      const filtered = await scanAll(store, "w", { customer: "a", types: ["llm"], from: 10, to: 30 });
      expect(filtered.seen.map((s) => s.id)).toEqual(["x3", "x4"]);
      const none = await scanAll(store, "nope");
      expect(none).toEqual({ seen: [], asOfSeq: 0 });
    });

    it("scanEvents: asOfSeq names exactly the commits the snapshot holds, under concurrent appends", async () => {
      const { store, reopen } = await setup();
      const other = await reopen();
      const commitOf = new Map<string, number>();
      const writers = [store, other].map(async (s, w) => {
        for (let b = 0; b < 30; b++) {
          const events = Array.from({ length: 5 }, (_, i) => ev(`w${w}_${b}_${i}`));
          await s.appendEvents("w", events, (inserted, seq) => {
            for (const i of inserted) commitOf.set(events[i]!.event.id, seq);
          });
        }
      });
      const scans: { ids: Set<string>; asOfSeq: number }[] = [];
      let done = false;
      const scanner = (async () => {
        while (!done) {
          const { seen, asOfSeq } = await scanAll(store);
          scans.push({ ids: new Set(seen.map((s) => s.id)), asOfSeq });
          // Let the writers' group commits (scheduled with setImmediate) run between scans.
          await new Promise((r) => setImmediate(r));
        }
      })();
      await Promise.all(writers);
      done = true;
      await scanner;
      scans.push(
        await scanAll(store).then(({ seen, asOfSeq }) => ({ ids: new Set(seen.map((s) => s.id)), asOfSeq })),
      );
      expect(commitOf.size).toBe(300);
      for (const scan of scans) {
        for (const [id, seq] of commitOf)
          expect(scan.ids.has(id), `${id}@${seq} vs ${scan.asOfSeq}`).toBe(seq <= scan.asOfSeq);
      }
    });

    it("reservations: saved durably, listed while active, replaced, purged when finished", async () => {
      const { store, reopen } = await setup();
      await store.saveReservation("w", reservation("r1"));
      await store.saveReservation("w", reservation("r2"));
      await store.saveReservation("w", { ...reservation("r2", "committed"), result: { ok: 1 } });
      const other = await reopen();
      expect((await other.listActiveReservations()).map((r) => [r.workspaceId, r.reservation.id])).toEqual([
        ["w", "r1"],
      ]);
      expect(await other.getReservation("w", "r2")).toMatchObject({ state: "committed", result: { ok: 1 } });
      expect(await other.getReservation("w", "zz")).toBeUndefined();
      expect(await store.purgeReservations(Date.now() + 1000)).toBe(1);
      expect(await store.getReservation("w", "r2")).toBeUndefined();
      expect(await store.getReservation("w", "r1")).toBeDefined();
    });

    it.runIf(backend.name === "sqlite")(
      "sqlite: writes made together share group commits (the writer thread groups what it holds)",
      async () => {
        const { store, reopen } = await setup();
        const seqOf: number[] = [];
        const results = await Promise.all(
          Array.from({ length: 40 }, (_, b) =>
            store.appendEvents("w", [ev(`g${b}`)], (_inserted, seq) => seqOf.push(seq)),
          ),
        );
        expect(results.every((r) => r.ok)).toBe(true);
        expect(seqOf).toHaveLength(40);
        // The first write may commit alone (it found the writer idle); the others queue behind it.
        expect(new Set(seqOf).size).toBeLessThanOrEqual(3);
        const other = await reopen();
        expect((await scanAll(other)).seen).toHaveLength(40);
      },
    );

    it("close flushes what was queued", async () => {
      const { store, reopen } = await setup();
      const p = store.appendEvents("w", [ev("late")]);
      const c = store.close();
      expect(await p).toMatchObject({ ok: true, accepted: 1 });
      await c;
      const other = await reopen();
      expect((await scanAll(other)).seen.map((s) => s.id)).toEqual(["late"]);
      await expect(store.appendEvents("w", [ev("after")])).rejects.toThrow();
    });
  });
}
