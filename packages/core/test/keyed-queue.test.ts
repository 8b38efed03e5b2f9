import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KeyedQueue } from "../src/engine/keyed-queue.js";

const tick = () => new Promise<void>((r) => setImmediate(r));

describe("KeyedQueue", () => {
  it("runs the tasks of one key one at a time, in order, and those of other keys alongside", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            key: fc.constantFrom("a", "b", "c"),
            fail: fc.boolean(),
            ticks: fc.nat(3),
            // Queued this many ticks after the start (in task order), while others may be running.
            after: fc.nat(2),
          }),
          {
            maxLength: 30,
          },
        ),
        async (tasks) => {
          const q = new KeyedQueue();
          const running = new Map<string, number>();
          const order = new Map<string, number[]>();
          const results: Promise<{ ok: number } | { error: string }>[] = [];
          for (const [i, t] of tasks.entries()) {
            for (let j = 0; j < t.after; j++) await tick();
            results.push(
              q
                .run(t.key, async () => {
                  running.set(t.key, (running.get(t.key) ?? 0) + 1);
                  expect(running.get(t.key)).toBe(1); // never two of one key at once
                  order.set(t.key, [...(order.get(t.key) ?? []), i]);
                  for (let j = 0; j < t.ticks; j++) await tick();
                  running.set(t.key, running.get(t.key)! - 1);
                  if (t.fail) throw new Error(`task ${i}`);
                  return i;
                })
                .then(
                  (v) => ({ ok: v }),
                  (e: Error) => ({ error: e.message }),
                ),
            );
          }
          const settled = await Promise.all(results);
          // Every task ran once, in queue order per key; a failure did not stop the next.
          for (const [i, s] of settled.entries())
            expect(s).toEqual(tasks[i]!.fail ? { error: `task ${i}` } : { ok: i });
          for (const [key, seen] of order)
            expect(seen).toEqual(tasks.flatMap((t, i) => (t.key === key ? [i] : [])));
          await tick();
          expect(q.size).toBe(0); // nothing held once all have settled
        },
      ),
      { numRuns: 200 },
    );
  });

  it("starts a task with nothing queued before it at once, and others only after the one before", async () => {
    const q = new KeyedQueue();
    const started: string[] = [];
    let release!: () => void;
    const first = q.run("k", () => {
      started.push("first");
      return new Promise<void>((r) => {
        release = r;
      });
    });
    expect(started).toEqual(["first"]);
    const second = q.run("k", async () => {
      started.push("second");
    });
    q.run("other", async () => {
      started.push("other");
    });
    expect(started).toEqual(["first", "other"]);
    await tick();
    expect(started).toEqual(["first", "other"]);
    release();
    await first;
    await second;
    expect(started).toEqual(["first", "other", "second"]);
  });

  it("turns a task that throws at once into a rejection, and runs the next", async () => {
    const q = new KeyedQueue();
    const failing = q.run("k", () => {
      throw new Error("sync");
    });
    const next = q.run("k", async () => "next");
    await expect(failing).rejects.toThrow("sync");
    await expect(next).resolves.toBe("next");
  });
});
