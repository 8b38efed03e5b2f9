// The memory store (packages/store-memory) and Store.pageEvents, on the memory and SQLite stores:
// pages in (timestamp, seq) order, from one snapshot, equal to a scan; idempotent appends.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canonicalFlat, type EventToStore, type Store, type UsageEvent } from "@tollgate/core";
import { MemoryStore } from "@tollgate/store-memory";
import { SqliteStore } from "@tollgate/store-sqlite";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";

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
  const valuesJson = canonicalFlat(event.values);
  const dimensionsJson = canonicalFlat(event.dimensions);
  return {
    event,
    fingerprint: `${id}\u0000${valuesJson}\u0000${dimensionsJson}`,
    valuesJson,
    dimensionsJson,
  };
}

const dirs: string[] = [];
const stores: { name: string; make: () => Store }[] = [
  { name: "memory", make: () => new MemoryStore() },
  {
    name: "sqlite",
    make: () => {
      const dir = mkdtempSync(join(tmpdir(), "tollgate-page-"));
      dirs.push(dir);
      return new SqliteStore({ path: join(dir, "t.db") });
    },
  },
];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function pages(store: Store, scan: Parameters<Store["pageEvents"]>[1], size: number) {
  const out: { id: string; seq: number }[] = [];
  let after: { timestamp: number; seq: number } | undefined;
  let asOfSeq: number | undefined;
  for (;;) {
    const page = await store.pageEvents(
      "w",
      { ...scan, ...(after ? { after } : {}), ...(asOfSeq !== undefined ? { asOfSeq } : {}) },
      size,
    );
    asOfSeq = page.asOfSeq;
    if (page.events.length === 0) return out;
    expect(page.events.length).toBeLessThanOrEqual(size);
    for (const e of page.events) out.push({ id: e.event.id, seq: e.seq });
    const last = page.events[page.events.length - 1]!;
    after = { timestamp: last.event.timestamp, seq: last.seq };
  }
}

for (const { name, make } of stores) {
  describe(`pageEvents (${name})`, () => {
    it("pages through exactly what a scan visits, in the same order, for any page size and filter", async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.record({ ts: fc.integer({ min: 0, max: 20 }), c: fc.integer({ min: 0, max: 3 }) }), {
            maxLength: 60,
          }),
          fc.integer({ min: 1, max: 7 }),
          fc.option(fc.subarray(["c0", "c1", "c2", "c3"], { minLength: 1 }), { nil: undefined }),
          async (rows, size, customers) => {
            const store = make();
            await store.ensureWorkspace("w", 0);
            // Several batches, out of time order.
            for (let i = 0; i < rows.length; i += 10) {
              await store.appendEvents(
                "w",
                rows
                  .slice(i, i + 10)
                  .map((r, j) => ev(`e${i + j}`, { timestamp: r.ts * 1000, customer: `c${r.c}` })),
              );
            }
            const scanned: { id: string; seq: number }[] = [];
            await store.scanEvents("w", { from: 2_000, to: 18_000 }, (e, seq) => {
              if (!customers || customers.includes(e.customer)) scanned.push({ id: e.id, seq });
            });
            const paged = await pages(
              store,
              { from: 2_000, to: 18_000, ...(customers ? { customers } : {}) },
              size,
            );
            expect(paged).toEqual(scanned);
            await store.close();
          },
        ),
        { numRuns: name === "sqlite" ? 15 : 100 },
      );
    });

    it("keeps to the first page's snapshot: events stored meanwhile are left out", async () => {
      const store = make();
      await store.ensureWorkspace("w", 0);
      await store.appendEvents("w", [ev("a", { timestamp: 1 }), ev("b", { timestamp: 3 })]);
      const first = await store.pageEvents("w", {}, 1);
      expect(first.events.map((e) => e.event.id)).toEqual(["a"]);
      await store.appendEvents("w", [ev("c", { timestamp: 2 }), ev("d", { timestamp: 4 })]);
      const last = first.events[0]!;
      const rest = await store.pageEvents(
        "w",
        { after: { timestamp: last.event.timestamp, seq: last.seq }, asOfSeq: first.asOfSeq },
        10,
      );
      expect(rest.events.map((e) => e.event.id)).toEqual(["b"]);
      await store.close();
    });
  });
}

describe("MemoryStore", () => {
  it("appends idempotently, all or nothing, and keeps values apart from the caller's objects", async () => {
    const s = new MemoryStore();
    await s.ensureWorkspace("w", 0);
    const seen: number[][] = [];
    const r1 = await s.appendEvents("w", [ev("a"), ev("b")], (inserted) => seen.push(inserted));
    expect(r1).toMatchObject({ ok: true, accepted: 2, duplicates: 0 });
    const r2 = await s.appendEvents("w", [ev("c"), ev("a")], (inserted) => seen.push(inserted));
    expect(r2).toMatchObject({ ok: true, accepted: 1, duplicates: 1, inserted: [0] });
    const conflict = await s.appendEvents("w", [ev("d"), ev("a", { values: { tokens: 6 } })]);
    expect(conflict).toEqual({ ok: false, conflictIndex: 1, id: "a" });
    expect(seen).toEqual([[0, 1], [0]]);
    const ids: string[] = [];
    await s.scanEvents("w", {}, (e) => {
      ids.push(e.id);
      e.values.tokens = 999; // a copy
    });
    expect(ids).toEqual(["a", "b", "c"]);
    const again: number[] = [];
    await s.scanEvents("w", {}, (e) => again.push(e.values.tokens!));
    expect(again).toEqual([5, 5, 5]);

    const body = { name: "x", nested: { n: 1 } };
    const put = await s.putRecord("w", "customer", "acme", body, 10);
    body.nested.n = 2;
    expect(put.created).toBe(true);
    expect((await s.getRecord<typeof body>("w", "customer", "acme"))?.body.nested.n).toBe(1);
    expect((await s.putRecord("w", "customer", "acme", body, 20)).record).toMatchObject({
      createdAt: 10,
      updatedAt: 20,
    });
  });

  it("keeps hourly rollups with the events and past a purge", async () => {
    const s = new MemoryStore();
    await s.ensureWorkspace("w", 0);
    const H = 3_600_000;
    await s.appendEvents("w", [
      ev("a", { timestamp: 10, values: { tokens_in: 3, cost: 7 } }),
      ev("b", { timestamp: H + 10, values: { tokens_in: 4, cost: 1 } }),
      ev("c", { timestamp: H + 20, values: { tokens_in: 5 }, dimensions: { model: "m", run: "r1" } }),
    ]);
    const hours = await s.queryRollups("w", { resolution: "hour", from: 0, to: 2 * H, byCustomer: true });
    expect(hours.map((h) => [h.bucket, h.events, h.tokensIn, h.cost])).toEqual([
      [0, 1n, 3n, 7n],
      [H, 2n, 9n, 1n],
    ]);
    expect(await s.purgeEvents("w", "acme", H)).toBe(1);
    const rows: number[] = [];
    const events: string[] = [];
    await s.scanUsage(
      "w",
      {},
      (e) => events.push(e.id),
      (r) => rows.push(r.events),
    );
    expect(rows).toEqual([1]);
    expect(events).toEqual(["b", "c"]);
    await s.rebuildRollups();
    const day = await s.queryRollups("w", { resolution: "day", from: 0, to: 86_400_000, byCustomer: false });
    expect(day[0]!.events).toBe(3n);
  });

  it("as a sink keeps nothing but hands every batch on", async () => {
    const got: string[] = [];
    const s = new MemoryStore({
      retainEvents: false,
      onAppend: (_w, evs, ins) => got.push(...ins.map((i) => evs[i]!.event.id)),
    });
    await s.ensureWorkspace("w", 0);
    expect(await s.appendEvents("w", [ev("a"), ev("a")])).toMatchObject({ ok: true, accepted: 2 });
    expect(got).toEqual(["a", "a"]);
    let n = 0;
    await s.scanEvents("w", {}, () => n++);
    expect(n).toBe(0);
  });
});
