import { ManualClock } from "@tollgate/core";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectError, startTestServer, type TestServer } from "../support/server.js";
import { type EventBody, expectInvalid } from "./helpers.js";

/**
 * Meters over HTTP: definitions, query validation, calendar windows, and a property test that
 * checks every returned row against a reference aggregation written here from API.md (and the
 * documented rules of meter.ts), independently of the core.
 */

const NOW = Date.UTC(2026, 11, 15, 0, 0, 0);
let t: TestServer;

beforeAll(async () => {
  t = await startTestServer({ clock: new ManualClock(NOW), apiRateLimit: null });
});
afterAll(() => t.close());

// ---- a reference aggregation ----------------------------------------------------------------------

type Aggregation = "sum" | "count" | "max" | "latest" | "unique_count";
type Unit = "hour" | "day" | "week" | "month";

interface MeterDef {
  event_type: string;
  aggregation: Aggregation;
  value?: string | string[];
  filter?: Record<string, string>;
}

interface Ev {
  id: string;
  type: string;
  customer: string;
  ts: number;
  values: Record<string, number>;
  dimensions: Record<string, string>;
}

interface Query {
  customer?: string;
  from?: number;
  to?: number;
  window?: Unit;
  groupBy: string[];
}

interface Row {
  start: number | null;
  end: number | null;
  groups: Record<string, string | null>;
  value: string;
}

/** [start, end) of the UTC calendar window of `unit` holding `ts`; weeks start on Monday. */
function windowOf(unit: Unit, ts: number): [number, number] {
  const d = new Date(ts);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  const day = d.getUTCDate();
  switch (unit) {
    case "hour":
      return [Date.UTC(y, m, day, d.getUTCHours()), Date.UTC(y, m, day, d.getUTCHours() + 1)];
    case "day":
      return [Date.UTC(y, m, day), Date.UTC(y, m, day + 1)];
    case "week": {
      const sinceMonday = (d.getUTCDay() + 6) % 7;
      return [Date.UTC(y, m, day - sinceMonday), Date.UTC(y, m, day - sinceMonday + 7)];
    }
    case "month":
      return [Date.UTC(y, m, 1), Date.UTC(y, m + 1, 1)];
  }
}

const names = (m: MeterDef) =>
  m.value === undefined ? [] : typeof m.value === "string" ? [m.value] : m.value;

/** The event's number for sum/max/latest: the sum of the listed values, a missing one counting 0. */
const contribution = (m: MeterDef, e: Ev) => names(m).reduce((s, n) => s + BigInt(e.values[n] ?? 0), 0n);

/** What unique_count counts: the listed fields (a dimension before a value of the same name). */
function identity(m: MeterDef, e: Ev): string | undefined {
  const fields = names(m).map((n) =>
    n in e.dimensions ? { d: e.dimensions[n] } : n in e.values ? { v: e.values[n] } : null,
  );
  return fields.every((f) => f === null) ? undefined : JSON.stringify(fields);
}

/** `events` in storage order. */
function reference(m: MeterDef, events: Ev[], q: Query): Row[] {
  const cells = new Map<
    string,
    { start: number | null; end: number | null; groups: Row["groups"]; evs: Ev[] }
  >();
  for (const e of events) {
    if (e.type !== m.event_type) continue;
    if (Object.entries(m.filter ?? {}).some(([k, v]) => e.dimensions[k] !== v)) continue;
    if (q.customer !== undefined && e.customer !== q.customer) continue;
    if (q.from !== undefined && e.ts < q.from) continue;
    if (q.to !== undefined && e.ts >= q.to) continue;
    const [start, end] = q.window ? windowOf(q.window, e.ts) : [q.from ?? null, q.to ?? null];
    const groups = Object.fromEntries(q.groupBy.map((g) => [g, e.dimensions[g] ?? null]));
    const key = JSON.stringify([start, q.groupBy.map((g) => groups[g])]);
    const cell = cells.get(key) ?? { start, end, groups, evs: [] };
    cell.evs.push(e);
    cells.set(key, cell);
  }
  return [...cells.values()].map(({ start, end, groups, evs }) => {
    let value: bigint;
    switch (m.aggregation) {
      case "count":
        value = BigInt(evs.length);
        break;
      case "sum":
        value = evs.reduce((s, e) => s + contribution(m, e), 0n);
        break;
      case "max":
        value = 0n;
        for (const e of evs) if (contribution(m, e) > value) value = contribution(m, e);
        break;
      case "latest": {
        // Latest timestamp; among equal timestamps the one stored last (a stable sort keeps storage order).
        const byTime = [...evs].sort((a, b) => a.ts - b.ts);
        value = contribution(m, byTime[byTime.length - 1]!);
        break;
      }
      case "unique_count":
        value = BigInt(new Set(evs.map((e) => identity(m, e)).filter((k) => k !== undefined)).size);
        break;
    }
    return { start, end, groups, value: value.toString() };
  });
}

// ---- talking to the server ---------------------------------------------------------------------------

const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** The API's rows, checked for shape and time order, in the reference's form. */
function normalize(data: unknown, groupBy: string[]): Row[] {
  expect(Array.isArray(data)).toBe(true);
  const rows = data as {
    window_start: string | null;
    window_end: string | null;
    value: unknown;
    groups: unknown;
  }[];
  const out = rows.map((r) => {
    for (const at of [r.window_start, r.window_end]) if (at !== null) expect(at).toMatch(RFC3339_UTC);
    const v = r.value;
    if (typeof v === "number") expect(Number.isSafeInteger(v) && v >= 0, String(v)).toBe(true);
    else expect(v).toMatch(/^\d+$/);
    expect(Object.keys(r.groups as object).sort()).toEqual([...groupBy].sort());
    return {
      start: r.window_start === null ? null : Date.parse(r.window_start),
      end: r.window_end === null ? null : Date.parse(r.window_end),
      groups: r.groups as Row["groups"],
      value: String(v),
    };
  });
  for (let i = 1; i < out.length; i++)
    expect(out[i]!.start ?? 0).toBeGreaterThanOrEqual(out[i - 1]!.start ?? 0);
  return out;
}

const canonical = (rows: Row[]) =>
  rows
    .map((r) =>
      JSON.stringify([
        r.start,
        r.end,
        Object.keys(r.groups)
          .sort()
          .map((k) => [k, r.groups[k]]),
        r.value,
      ]),
    )
    .sort();

const queryString = (q: Query) => {
  const p = new URLSearchParams();
  if (q.customer !== undefined) p.set("customer", q.customer);
  if (q.from !== undefined) p.set("from", new Date(q.from).toISOString());
  if (q.to !== undefined) p.set("to", new Date(q.to).toISOString());
  if (q.window) p.set("window", q.window);
  if (q.groupBy.length) p.set("group_by", q.groupBy.join(","));
  return p.toString();
};

async function query(meter: string, q: Query): Promise<Row[]> {
  const res = await t.api("GET", `/v1/meters/${meter}/query?${queryString(q)}`);
  expect(res.status, res.text).toBe(200);
  return normalize(res.body.data, q.groupBy);
}

async function putMeter(id: string, def: MeterDef): Promise<void> {
  const res = await t.api("PUT", `/v1/meters/${id}`, def);
  expect([200, 201], res.text).toContain(res.status);
}

async function record(events: Ev[], batch = 500): Promise<void> {
  for (let i = 0; i < events.length; i += batch) {
    const body: EventBody[] = events.slice(i, i + batch).map((e) => ({
      id: e.id,
      type: e.type,
      customer: e.customer,
      timestamp: new Date(e.ts).toISOString(),
      values: e.values,
      dimensions: e.dimensions,
    }));
    const res = await t.api("POST", "/v1/events", { events: body });
    expect(res.status, res.text).toBe(202);
    expect(res.body).toEqual({ accepted: body.length, duplicates: 0 });
  }
}

let seq = 0;
/** An event of `type` at `at` (RFC 3339), customer "c". */
const ev = (
  type: string,
  at: string,
  values: Record<string, number> = {},
  dimensions: Record<string, string> = {},
) => ({ id: `x${++seq}`, type, customer: "c", ts: Date.parse(at), values, dimensions }) satisfies Ev;

/** Defines a meter over its own event type, records `events`, and checks `q` against the reference. */
async function scenario(id: string, def: Omit<MeterDef, "event_type">, events: Ev[], q: Query) {
  const full = { ...def, event_type: `${id}.event` };
  const mine = events.map((e) => ({ ...e, id: `${id}-${e.id}`, type: full.event_type }));
  await putMeter(id, full);
  await record(mine);
  const rows = await query(id, q);
  expect(canonical(rows)).toEqual(canonical(reference(full, mine, q)));
  return rows;
}

const at = (iso: string) => Date.parse(iso);

// ---- definitions and validation --------------------------------------------------------------------

describe("meter definitions", () => {
  it("creates with 201, replaces with 200, and presents value as given", async () => {
    const single = await t.api("PUT", "/v1/meters/def1", {
      event_type: "llm.completion",
      aggregation: "sum",
      value: "tokens_in",
      filter: { model: "gpt-4o" },
    });
    expect(single.status, single.text).toBe(201);
    expect(single.body).toMatchObject({
      id: "def1",
      event_type: "llm.completion",
      aggregation: "sum",
      value: "tokens_in",
      filter: { model: "gpt-4o" },
    });
    const list = await t.api("PUT", "/v1/meters/def1", {
      event_type: "llm.completion",
      aggregation: "max",
      value: ["tokens_in", "tokens_out"],
    });
    expect(list.status).toBe(200);
    const got = await t.api("GET", "/v1/meters/def1");
    expect(got.body).toMatchObject({ id: "def1", aggregation: "max", value: ["tokens_in", "tokens_out"] });
    expect(got.body.filter ?? {}).toEqual({});
    const count = await t.api("PUT", "/v1/meters/def2", {
      event_type: "llm.completion",
      aggregation: "count",
    });
    expect(count.status).toBe(201);
    const ids = (await t.api("GET", "/v1/meters")).body.data.map((m: { id: string }) => m.id);
    expect(ids).toEqual(expect.arrayContaining(["def1", "def2"]));
  });

  it("answers 400 naming the field for invalid meters, and changes nothing", async () => {
    expectInvalid(
      await t.api("PUT", "/v1/meters/bad", { event_type: "x", aggregation: "avg", value: "v" }),
      "aggregation",
    );
    for (const aggregation of ["sum", "max", "latest", "unique_count"]) {
      expectInvalid(await t.api("PUT", "/v1/meters/bad", { event_type: "x", aggregation }), "value");
    }
    expectInvalid(
      await t.api("PUT", "/v1/meters/bad", { event_type: "", aggregation: "count" }),
      "event_type",
    );
    expectInvalid(
      await t.api("PUT", "/v1/meters/bad", { event_type: "x", aggregation: "sum", value: [] }),
      "value",
    );
    expectInvalid(
      await t.api("PUT", "/v1/meters/bad", { event_type: "x", aggregation: "count", filter: { model: 4 } }),
      "filter.model",
    );
    expectError(await t.api("GET", "/v1/meters/bad"), 404, "NOT_FOUND");
    expectError(await t.api("GET", "/v1/meters/bad/query"), 404, "NOT_FOUND");
  });

  it("answers 400 to invalid queries", async () => {
    await putMeter("qv", { event_type: "qv", aggregation: "count" });
    const bad: [string, RegExp][] = [
      ["window=year", /window$/],
      ["window=Hour", /window$/],
      ["from=yesterday", /from$/],
      ["to=2026-13-01T00:00:00Z", /to$/],
      ["from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z", /from|to/],
      ["from=2026-11-01T00:00:00Z&to=2026-11-01T00:00:00Z", /from|to/],
      ["group_by=model,", /group_by$/],
      ["group_by=a,b,c,d,e,f,g,h,i", /group_by$/],
      ["colour=red", /colour$/],
    ];
    for (const [qs, field] of bad) {
      const error = expectError(await t.api("GET", `/v1/meters/qv/query?${qs}`), 400, "INVALID_REQUEST");
      expect(String(error.details?.field), qs).toMatch(field);
    }
  });

  it("answers an empty list when nothing matches", async () => {
    await putMeter("empty", { event_type: "never.sent", aggregation: "sum", value: "v" });
    for (const window of ["", "&window=hour", "&window=month"]) {
      const res = await t.api("GET", `/v1/meters/empty/query?customer=c${window}`);
      expect(res.status).toBe(200);
      expect(res.body.data).toEqual([]);
    }
  });
});

// ---- calendar windows and bounds ----------------------------------------------------------------------

describe("windows", () => {
  it("starts weeks on Monday 00:00 UTC", async () => {
    const rows = await scenario(
      "week",
      { aggregation: "count" },
      [
        ev("w", "2026-11-22T23:59:59Z"), // Sunday
        ev("w", "2026-11-23T00:00:00Z"), // Monday
        ev("w", "2026-11-25T12:00:00Z"), // Wednesday
        ev("w", "2026-11-29T23:59:59.999Z"), // Sunday
        ev("w", "2026-11-30T00:00:00Z"), // next Monday
      ],
      { window: "week", groupBy: [] },
    );
    expect(rows).toEqual([
      { start: at("2026-11-16T00:00:00Z"), end: at("2026-11-23T00:00:00Z"), groups: {}, value: "1" },
      { start: at("2026-11-23T00:00:00Z"), end: at("2026-11-30T00:00:00Z"), groups: {}, value: "3" },
      { start: at("2026-11-30T00:00:00Z"), end: at("2026-12-07T00:00:00Z"), groups: {}, value: "1" },
    ]);
  });

  it("cuts hours and days at exact boundaries", async () => {
    const events = [
      ev("h", "2026-11-23T10:59:59.999Z", { v: 1 }),
      ev("h", "2026-11-23T11:00:00Z", { v: 2 }),
      ev("h", "2026-11-23T23:59:59.999Z", { v: 4 }),
      ev("h", "2026-11-24T00:00:00Z", { v: 8 }),
    ];
    const hours = await scenario("hours", { aggregation: "sum", value: "v" }, events, {
      window: "hour",
      groupBy: [],
    });
    expect(hours.map((r) => [new Date(r.start!).toISOString(), r.value])).toEqual([
      ["2026-11-23T10:00:00.000Z", "1"],
      ["2026-11-23T11:00:00.000Z", "2"],
      ["2026-11-23T23:00:00.000Z", "4"],
      ["2026-11-24T00:00:00.000Z", "8"],
    ]);
    const days = await query("hours", { window: "day", groupBy: [] });
    expect(
      days.map((r) => [new Date(r.start!).toISOString(), new Date(r.end!).toISOString(), r.value]),
    ).toEqual([
      ["2026-11-23T00:00:00.000Z", "2026-11-24T00:00:00.000Z", "7"],
      ["2026-11-24T00:00:00.000Z", "2026-11-25T00:00:00.000Z", "8"],
    ]);
  });

  it("cuts months at the 1st, across a leap February", async () => {
    const events = [
      ev("m", "2024-01-31T23:59:59.999Z", { v: 1 }),
      ev("m", "2024-02-01T00:00:00Z", { v: 2 }),
      ev("m", "2024-02-29T23:59:59Z", { v: 4 }),
      ev("m", "2024-03-01T00:00:00Z", { v: 8 }),
      ev("m", "2025-02-28T23:59:59Z", { v: 16 }),
      ev("m", "2025-03-01T00:00:00Z", { v: 32 }),
      ev("m", "2025-12-31T23:59:59Z", { v: 64 }),
      ev("m", "2026-01-01T00:00:00Z", { v: 128 }),
    ];
    const rows = await scenario("months", { aggregation: "sum", value: "v" }, events, {
      window: "month",
      groupBy: [],
    });
    const iso = (ms: number | null) => new Date(ms!).toISOString().slice(0, 10);
    expect(rows.map((r) => [iso(r.start), iso(r.end), r.value])).toEqual([
      ["2024-01-01", "2024-02-01", "1"],
      ["2024-02-01", "2024-03-01", "6"],
      ["2024-03-01", "2024-04-01", "8"],
      ["2025-02-01", "2025-03-01", "16"],
      ["2025-03-01", "2025-04-01", "32"],
      ["2025-12-01", "2026-01-01", "64"],
      ["2026-01-01", "2026-02-01", "128"],
    ]);
    const weeks = await query("months", {
      window: "week",
      from: at("2024-02-26T00:00:00Z"),
      to: at("2024-03-04T00:00:00Z"),
      groupBy: [],
    });
    expect(weeks).toEqual([
      { start: at("2024-02-26T00:00:00Z"), end: at("2024-03-04T00:00:00Z"), groups: {}, value: "12" },
    ]);
  });

  it("includes from and excludes to", async () => {
    const events = [
      ev("b", "2026-11-01T09:59:59.999Z", { v: 1 }),
      ev("b", "2026-11-01T10:00:00Z", { v: 2 }),
      ev("b", "2026-11-01T10:30:00Z", { v: 4 }),
      ev("b", "2026-11-01T10:59:59.999Z", { v: 8 }),
      ev("b", "2026-11-01T11:00:00Z", { v: 16 }),
    ];
    const q = { from: at("2026-11-01T10:00:00Z"), to: at("2026-11-01T11:00:00Z"), groupBy: [] };
    const rows = await scenario("bounds", { aggregation: "sum", value: "v" }, events, q);
    expect(rows).toEqual([{ start: q.from, end: q.to, groups: {}, value: "14" }]);
    // Windows keep their calendar alignment inside the bounds.
    const days = await query("bounds", { ...q, window: "day" });
    expect(days).toEqual([
      { start: at("2026-11-01T00:00:00Z"), end: at("2026-11-02T00:00:00Z"), groups: {}, value: "14" },
    ]);
    expect(await query("bounds", { from: at("2026-11-01T11:00:00Z"), groupBy: [] })).toEqual([
      { start: at("2026-11-01T11:00:00Z"), end: null, groups: {}, value: "16" },
    ]);
    expect(await query("bounds", { to: at("2026-11-01T10:00:00Z"), groupBy: [] })).toEqual([
      { start: null, end: at("2026-11-01T10:00:00Z"), groups: {}, value: "1" },
    ]);
  });
});

// ---- aggregations with fixed examples ---------------------------------------------------------------------

describe("aggregations", () => {
  it("latest: the latest timestamp wins; on a tie, the event stored last", async () => {
    const def = { event_type: "lt.event", aggregation: "latest" as const, value: "v" };
    await putMeter("latest", def);
    const tie = "2026-11-10T12:00:00Z";
    // Separate batches: stored in this order.
    await record([ev(def.event_type, tie, { v: 5 })]);
    await record([ev(def.event_type, tie, { v: 3 })]);
    expect((await query("latest", { groupBy: [] }))[0]?.value).toBe("3");
    // Within one batch: array order is storage order.
    await record([ev(def.event_type, tie, { v: 7 }), ev(def.event_type, tie, { v: 2 })]);
    expect((await query("latest", { groupBy: [] }))[0]?.value).toBe("2");
    // Stored later but earlier in time: does not win.
    await record([ev(def.event_type, "2026-11-10T11:59:59Z", { v: 100 })]);
    expect((await query("latest", { groupBy: [] }))[0]?.value).toBe("2");
    // Later in time: wins, even with 0.
    await record([ev(def.event_type, "2026-11-10T12:00:00.001Z", {})]);
    expect((await query("latest", { groupBy: [] }))[0]?.value).toBe("0");
  });

  it("groups a missing dimension as null", async () => {
    const events = [
      ev("g", "2026-11-02T10:00:00Z", { v: 1 }, { model: "a", workflow: "w1" }),
      ev("g", "2026-11-02T10:00:00Z", { v: 2 }, { model: "a" }),
      ev("g", "2026-11-02T10:00:00Z", { v: 4 }, { workflow: "w1" }),
      ev("g", "2026-11-02T10:00:00Z", { v: 8 }, {}),
      ev("g", "2026-11-02T10:00:00Z", { v: 16 }, { model: "a", workflow: "w1" }),
    ];
    const rows = await scenario("groups", { aggregation: "sum", value: "v" }, events, {
      groupBy: ["model", "workflow"],
    });
    expect(canonical(rows)).toEqual(
      canonical([
        { start: null, end: null, groups: { model: "a", workflow: "w1" }, value: "17" },
        { start: null, end: null, groups: { model: "a", workflow: null }, value: "2" },
        { start: null, end: null, groups: { model: null, workflow: "w1" }, value: "4" },
        { start: null, end: null, groups: { model: null, workflow: null }, value: "8" },
      ]),
    );
    const byModel = await query("groups", { groupBy: ["model"] });
    expect(canonical(byModel)).toEqual(
      canonical([
        { start: null, end: null, groups: { model: "a" }, value: "19" },
        { start: null, end: null, groups: { model: null }, value: "12" },
      ]),
    );
  });

  it("counts unique values of a dimension and of a tuple", async () => {
    const events = [
      ev("u", "2026-11-03T10:00:00Z", { n: 1 }, { user: "u1" }),
      ev("u", "2026-11-03T10:00:00Z", { n: 2 }, { user: "u1" }),
      ev("u", "2026-11-03T10:00:00Z", { n: 1 }, { user: "u2" }),
      ev("u", "2026-11-03T10:00:00Z", { n: 1 }, {}),
      ev("u", "2026-11-03T10:00:00Z", {}, {}),
    ];
    const single = await scenario("uniq1", { aggregation: "unique_count", value: "user" }, events, {
      groupBy: [],
    });
    expect(single.map((r) => r.value)).toEqual(["2"]);
    const tuple = await scenario("uniq2", { aggregation: "unique_count", value: ["user", "n"] }, events, {
      groupBy: [],
    });
    // (u1,1), (u1,2), (u2,1), (null,1); the event with neither field is not counted.
    expect(tuple.map((r) => r.value)).toEqual(["4"]);
  });

  it("sums exactly past 2^53-1", async () => {
    const big = Number.MAX_SAFE_INTEGER;
    const events = [ev("s", "2026-11-04T10:00:00Z", { v: big }), ev("s", "2026-11-04T10:00:00Z", { v: big })];
    const rows = await scenario("bigsum", { aggregation: "sum", value: "v" }, events, { groupBy: [] });
    expect(rows[0]?.value).toBe((2n * BigInt(big)).toString());
  });

  it("applies the filter to dimensions, all entries at once", async () => {
    const events = [
      ev("f", "2026-11-05T10:00:00Z", { v: 1 }, { model: "a", feature: "chat" }),
      ev("f", "2026-11-05T10:00:00Z", { v: 2 }, { model: "a", feature: "agent" }),
      ev("f", "2026-11-05T10:00:00Z", { v: 4 }, { model: "b", feature: "chat" }),
      ev("f", "2026-11-05T10:00:00Z", { v: 8 }, { feature: "chat" }),
    ];
    const rows = await scenario(
      "filter2",
      { aggregation: "sum", value: "v", filter: { model: "a", feature: "chat" } },
      events,
      { groupBy: [] },
    );
    expect(rows.map((r) => r.value)).toEqual(["1"]);
  });
});

// ---- the property: every row equals the reference ------------------------------------------------------

/** Instants on and around window boundaries (Sunday/Monday, month ends, leap day) in 2024. */
const ANCHORS = [
  "2024-01-31T23:59:59.999Z",
  "2024-02-01T00:00:00Z",
  "2024-02-11T23:59:59Z", // Sunday
  "2024-02-12T00:00:00Z", // Monday
  "2024-02-25T23:30:00Z", // Sunday
  "2024-02-26T00:00:00Z", // Monday
  "2024-02-28T23:59:59.999Z",
  "2024-02-29T00:00:00Z",
  "2024-02-29T12:34:56.789Z",
  "2024-02-29T23:59:59.999Z",
  "2024-03-01T00:00:00Z",
  "2024-03-03T23:00:00Z", // Sunday
  "2024-03-04T00:00:00Z", // Monday
].map(Date.parse);

const instant = fc
  .tuple(
    fc.constantFrom(...ANCHORS),
    fc.oneof(
      { weight: 3, arbitrary: fc.constant(0) },
      { weight: 2, arbitrary: fc.integer({ min: -3_600_000, max: 3_600_000 }) },
      { weight: 1, arbitrary: fc.integer({ min: -10 * 86_400_000, max: 10 * 86_400_000 }) },
    ),
  )
  .map(([a, d]) => a + d);

const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 3 });

const eventArb = fc.record({
  customer: fc.constantFrom("c1", "c2"),
  ts: instant,
  tokens_in: optional(fc.integer({ min: 0, max: 1_000 })),
  tokens_out: optional(fc.integer({ min: 0, max: 1_000 })),
  model: optional(fc.constantFrom("a", "b")),
  workflow: optional(fc.constantFrom("w1", "w2")),
  user: optional(fc.constantFrom("u1", "u2", "u3")),
});

const METERS: [string, Omit<MeterDef, "event_type">][] = [];
for (const [agg, single, list] of [
  ["sum", "tokens_in", ["tokens_in", "tokens_out"]],
  ["max", "tokens_in", ["tokens_in", "tokens_out"]],
  ["latest", "tokens_in", ["tokens_in", "tokens_out"]],
  ["count", undefined, ["tokens_in"]],
  ["unique_count", "user", ["user", "tokens_out"]],
] as [Aggregation, string | undefined, string[]][]) {
  for (const [shape, value] of [
    ["one", single],
    ["list", list],
  ] as const) {
    for (const [fname, filter] of [
      ["all", undefined],
      ["a", { model: "a" }],
    ] as const) {
      METERS.push([
        `${agg}-${shape}-${fname}`,
        { aggregation: agg, ...(value !== undefined ? { value } : {}), ...(filter ? { filter } : {}) },
      ]);
    }
  }
}

const GROUP_BYS = [[], ["model"], ["workflow"], ["model", "workflow"], ["user"], ["region", "model"]];

const queryArb = fc.record({
  customer: fc.constantFrom("c1", "c2"),
  groupBy: fc.constantFrom(...GROUP_BYS),
  window: fc.constantFrom<Unit | undefined>(undefined, "hour", "day", "week", "month"),
  from: optional(instant),
  to: optional(instant),
});

describe("meter queries against a reference aggregation", () => {
  const type = "prop.event";
  const defs = METERS.map(([id, def]) => [`p-${id}`, { ...def, event_type: type }] as const);
  let run = 0;

  beforeAll(async () => {
    for (const [id, def] of defs) await putMeter(id, def);
  });

  it("match for every aggregation, value shape, filter, grouping, window and bound", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(eventArb, fc.integer({ min: 0, max: 9 })), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 4, max: 40 }),
        fc.array(queryArb, { minLength: METERS.length, maxLength: METERS.length }),
        async (raw, batch, queries) => {
          // Each run has customers of its own, so earlier runs' events never match its queries.
          run++;
          const events: Ev[] = raw.map(([e, noise], i) => ({
            id: `p${run}-${i}`,
            // One in ten events is of another type: no meter may count it.
            type: noise === 0 ? `${type}.other` : type,
            customer: `r${run}-${e.customer}`,
            ts: e.ts,
            values: {
              ...(e.tokens_in !== undefined ? { tokens_in: e.tokens_in } : {}),
              ...(e.tokens_out !== undefined ? { tokens_out: e.tokens_out } : {}),
            },
            dimensions: {
              ...(e.model !== undefined ? { model: e.model } : {}),
              ...(e.workflow !== undefined ? { workflow: e.workflow } : {}),
              ...(e.user !== undefined ? { user: e.user } : {}),
            },
          }));
          await record(events, batch);
          // One query per meter, each with its own window, grouping, customer and bounds.
          for (const [i, [id, def]] of defs.entries()) {
            const { window, from, to, groupBy, customer } = queries[i]!;
            const q: Query = {
              customer: `r${run}-${customer}`,
              groupBy,
              ...(window ? { window } : {}),
              ...(from !== undefined ? { from } : {}),
              ...(to !== undefined && (from === undefined || to > from) ? { to } : {}),
            };
            const got = canonical(await query(id, q));
            expect(got, `${id} ${queryString(q)}`).toEqual(canonical(reference(def, events, q)));
          }
        },
      ),
      { numRuns: 60 },
    );
  }, 120_000); // a pass takes seconds; the rest is room for shrinking a failure
});
