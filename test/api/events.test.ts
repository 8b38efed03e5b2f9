import { ManualClock } from "@tollgate/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectError, startTestServer, type TestServer } from "../support/server.js";
import { type EventBody, expectInvalid, meterTotal } from "./helpers.js";

/** POST /v1/events: batches, all-or-nothing, idempotency by id, default timestamps. */

const NOW = Date.UTC(2026, 10, 23, 10, 30, 0);
const clock = new ManualClock(NOW);
let t: TestServer;

const total = (meter: "tokens" | "count", customer: string) => meterTotal(t.api, meter, customer);
const post = (events: unknown[]) => t.api("POST", "/v1/events", { events });

/** `count` events of customer `c`, ids `${c}-0…`, tokens_in = i + 1. */
const many = (c: string, count: number): EventBody[] =>
  Array.from({ length: count }, (_, i) => ({
    id: `${c}-${i}`,
    type: "llm.completion",
    customer: c,
    timestamp: "2026-11-23T09:15:00Z",
    values: { tokens_in: i + 1, tokens_out: 2 },
    dimensions: { model: "gpt-4o", feature: "chat" },
  }));

beforeAll(async () => {
  t = await startTestServer({ clock, apiRateLimit: null });
  for (const [id, body] of [
    ["tokens", { event_type: "llm.completion", aggregation: "sum", value: "tokens_in" }],
    ["count", { event_type: "llm.completion", aggregation: "count" }],
  ] as const) {
    expect((await t.api("PUT", `/v1/meters/${id}`, body)).status).toBe(201);
  }
});
afterAll(() => t.close());

describe("batches", () => {
  it("takes 1,000 events in one call", async () => {
    const res = await post(many("k", 1_000));
    expect(res.status, res.text).toBe(202);
    expect(res.body).toEqual({ accepted: 1_000, duplicates: 0 });
    expect(await total("count", "k")).toBe(1_000);
    expect(await total("tokens", "k")).toBe((1_000 * 1_001) / 2);
  });

  it("refuses 1,001 events and stores none of them", async () => {
    expectInvalid(await post(many("k1001", 1_001)), "events");
    expect(await total("count", "k1001")).toBe(0);
    expect((await post(many("k1001", 1_000))).body).toEqual({ accepted: 1_000, duplicates: 0 });
  });

  it("is all-or-nothing: one schema-invalid event rejects the batch with its index", async () => {
    const events: unknown[] = many("aon", 6);
    events[3] = { ...(events[3] as EventBody), values: { tokens_in: "12" } };
    expectInvalid(await post(events), "events[3].values.tokens_in", 3);
    expect(await total("count", "aon")).toBe(0);
    events[3] = { ...(events[3] as EventBody), values: { tokens_in: 4 } };
    // Had any of the others been stored, they would now count as duplicates.
    expect((await post(events)).body).toEqual({ accepted: 6, duplicates: 0 });
  });

  it("is all-or-nothing when the engine rejects an event (future timestamp)", async () => {
    const events = many("aon2", 5);
    events[4] = { ...events[4]!, timestamp: new Date(NOW + 25 * 3_600_000).toISOString() };
    expectInvalid(await post(events), "events[4].timestamp", 4);
    expect(await total("count", "aon2")).toBe(0);
  });

  it("refuses an empty batch", async () => {
    expectError(await post([]), 400, "INVALID_REQUEST");
  });
});

describe("idempotency", () => {
  it("counts a repeated event once and reports it as a duplicate", async () => {
    const events = many("dup", 3);
    expect((await post(events)).body).toEqual({ accepted: 3, duplicates: 0 });
    const before = await total("tokens", "dup");
    expect(before).toBe(6);
    const again = await post(events);
    expect(again.status).toBe(202);
    expect(again.body).toEqual({ accepted: 0, duplicates: 3 });
    expect(await total("tokens", "dup")).toBe(before);
    expect(await total("count", "dup")).toBe(3);
  });

  it("treats a retry with keys in another order as the same body", async () => {
    const e = many("order", 1)[0]!;
    expect((await post([e])).body).toEqual({ accepted: 1, duplicates: 0 });
    const reordered = {
      dimensions: { feature: "chat", model: "gpt-4o" },
      values: { tokens_out: 2, tokens_in: 1 },
      timestamp: e.timestamp,
      customer: e.customer,
      type: e.type,
      id: e.id,
    };
    expect((await post([reordered])).body).toEqual({ accepted: 0, duplicates: 1 });
  });

  it("counts the same id twice in one batch once", async () => {
    const [e] = many("twice", 1);
    const res = await post([e, e]);
    expect(res.status, res.text).toBe(202);
    expect(res.body).toEqual({ accepted: 1, duplicates: 1 });
    expect(await total("count", "twice")).toBe(1);
    expect(await total("tokens", "twice")).toBe(1);
  });

  it("answers 409 CONFLICT to the same id with another body, storing nothing of that batch", async () => {
    const [e] = many("conflict", 1);
    expect((await post([e])).body).toEqual({ accepted: 1, duplicates: 0 });
    const variants: unknown[] = [
      { ...e, values: { tokens_in: 999, tokens_out: 2 } },
      { ...e, values: { tokens_in: 1 } },
      { ...e, timestamp: "2026-11-23T09:15:01Z" },
      { ...e, customer: "someone-else" },
      { ...e, type: "llm.embedding" },
      { ...e, dimensions: { model: "gpt-4o", feature: "chat", workflow: "w" } },
      { ...e, timestamp: undefined },
    ];
    for (const [i, variant] of variants.entries()) {
      const fresh = { ...many("conflict-new", 1)[0]!, id: `conflict-new-${i}` };
      const res = await post([fresh, variant]);
      const error = expectError(res, 409, "CONFLICT");
      if (error.details?.index !== undefined) expect(error.details.index, res.text).toBe(1);
      // The batch's other event was not stored: sent alone now, it is new.
      expect((await post([fresh])).body).toEqual({ accepted: 1, duplicates: 0 });
    }
    expect(await total("tokens", "conflict")).toBe(1);
    expect(await total("count", "someone-else")).toBe(0);
  });

  it("answers 409 to the same id twice in one batch with different bodies", async () => {
    const [e] = many("conflict2", 1);
    const res = await post([e, { ...e, values: { tokens_in: 50 } }]);
    expectError(res, 409, "CONFLICT");
    expect(await total("count", "conflict2")).toBe(0);
  });

  it("answers a retried batch after success with all duplicates", async () => {
    const events = many("retry", 250);
    expect((await post(events)).body).toEqual({ accepted: 250, duplicates: 0 });
    // A partly new retry: old ones are duplicates, new ones accepted.
    const more = many("retry", 260);
    expect((await post(more)).body).toEqual({ accepted: 10, duplicates: 250 });
    expect((await post(more)).body).toEqual({ accepted: 0, duplicates: 260 });
    expect(await total("count", "retry")).toBe(260);
  });

  it("keeps idempotency across concurrent retries of one batch", async () => {
    const events = many("race", 50);
    const answers = await Promise.all(Array.from({ length: 5 }, () => post(events)));
    for (const a of answers) expect(a.status, a.text).toBe(202);
    expect(answers.reduce((s, a) => s + a.body.accepted, 0)).toBe(50);
    expect(answers.reduce((s, a) => s + a.body.duplicates, 0)).toBe(200);
    expect(await total("count", "race")).toBe(50);
  });
});

describe("timestamps", () => {
  it("defaults to now: an event without timestamp lands in the current hour window", async () => {
    const res = await post([
      { id: "now-1", type: "llm.completion", customer: "now", values: { tokens_in: 3 } },
    ]);
    expect(res.status, res.text).toBe(202);
    const q = await t.api("GET", "/v1/meters/tokens/query?customer=now&window=hour");
    expect(q.body.data).toHaveLength(1);
    expect(Date.parse(q.body.data[0].window_start)).toBe(Date.UTC(2026, 10, 23, 10, 0, 0));
    expect(Date.parse(q.body.data[0].window_end)).toBe(Date.UTC(2026, 10, 23, 11, 0, 0));
    expect(q.body.data[0].value).toBe(3);
    // Only now's hour: not the previous one.
    const before = await t.api("GET", "/v1/meters/tokens/query?customer=now&to=2026-11-23T10:30:00Z");
    expect(before.body.data).toEqual([]);
    const from = await t.api("GET", "/v1/meters/tokens/query?customer=now&from=2026-11-23T10:30:00Z");
    expect(from.body.data.map((r: { value: number }) => r.value)).toEqual([3]);
  });

  it("treats a retry without timestamp as the same event, even later", async () => {
    const e = { id: "now-2", type: "llm.completion", customer: "now2", values: { tokens_in: 5 } };
    expect((await post([e])).body).toEqual({ accepted: 1, duplicates: 0 });
    clock.advance(2 * 3_600_000);
    try {
      expect((await post([e])).body).toEqual({ accepted: 0, duplicates: 1 });
      const q = await t.api("GET", "/v1/meters/tokens/query?customer=now2&window=hour");
      expect(q.body.data).toHaveLength(1);
      expect(Date.parse(q.body.data[0].window_start)).toBe(Date.UTC(2026, 10, 23, 10, 0, 0));
    } finally {
      clock.set(NOW);
    }
  });

  it("takes other UTC offsets and stores the instant", async () => {
    const res = await post([
      {
        id: "tz-1",
        type: "llm.completion",
        customer: "tz",
        timestamp: "2026-11-23T01:59:59.500-08:00",
        values: { tokens_in: 1 },
      },
    ]);
    expect(res.status).toBe(202);
    const q = await t.api("GET", "/v1/meters/tokens/query?customer=tz&window=hour");
    expect(Date.parse(q.body.data[0].window_start)).toBe(Date.UTC(2026, 10, 23, 9, 0, 0));
  });
});
