import { formatInstant, ManualClock } from "@tollgate/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectError, startTestServer, type TestServer } from "../support/server.js";
import { actualRows, csvRows, expectedRows, replay, type TraceEvent, traceEvents, usd } from "./support.js";

/**
 * Reports over a replay of ../shared/data/azure-llm-2023 (both files: conv.csv as workflow "chat" on
 * gpt-4o, code.csv as workflow "code" on gpt-4o-mini; see support.ts), as recorded, and once more
 * stretched over 41.7 days (customers prefixed "s_"). Every report is compared with totals the test
 * computes itself from the same rows; then retention purges every raw event and the same reports
 * must give the same numbers.
 */
const NOW = Date.UTC(2024, 2, 10, 12, 0, 0);
const FROM = Date.UTC(2023, 10, 16, 0, 0, 0);
const TO = Date.UTC(2024, 2, 1, 0, 0, 0);
const GRANULARITIES = [null, "hour", "day", "week", "month"] as const;
const GROUPINGS = [[], ["model"], ["workflow"], ["customer"], ["customer", "model"], ["feature", "workflow"]];

let t: TestServer;
let events: TraceEvent[];
const clock = new ManualClock(NOW);

beforeAll(async () => {
  t = await startTestServer({ clock });
  events = [
    ...traceEvents(),
    ...traceEvents({ stretch: { base: Date.UTC(2023, 11, 20, 0, 0, 0), factor: 1000, prefix: "s_" } }),
  ];
  await replay(t, events);
}, 120_000);

afterAll(async () => {
  await t?.close();
});

const q = (params: Record<string, string | undefined>) =>
  new URLSearchParams(
    Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined),
  ).toString();

async function report(granularity: string | null, groupBy: string[], extra: Record<string, string> = {}) {
  const res = await t.api(
    "GET",
    `/v1/usage?${q({
      from: formatInstant(FROM),
      to: formatInstant(TO),
      granularity: granularity ?? undefined,
      group_by: groupBy.length ? groupBy.join(",") : undefined,
      ...extra,
    })}`,
  );
  expect(res.status, res.text).toBe(200);
  return res;
}

/** Every granularity × grouping, compared with the test's own totals; returns the answers. */
async function checkAll(): Promise<string[]> {
  const answers: string[] = [];
  for (const g of GRANULARITIES) {
    for (const groupBy of GROUPINGS) {
      const res = await report(g, groupBy);
      const expected = expectedRows(events, { granularity: g, groupBy, from: FROM, to: TO });
      expect(actualRows(res.body.data, groupBy), `${g} by ${groupBy}`).toEqual(expected);
      answers.push(res.text);
    }
  }
  return answers;
}

describe("GET /v1/usage over the Azure trace", () => {
  let before: string[];

  it("equals independently computed totals for every granularity and grouping", async () => {
    expect(events.length).toBe(2 * 28_185);
    before = await checkAll();
    // The grand total, spelled out once.
    const all = (await report(null, [])).body.data;
    expect(all).toHaveLength(1);
    const tin = events.reduce((s, e) => s + e.tokensIn, 0);
    const tout = events.reduce((s, e) => s + e.tokensOut, 0);
    expect(all[0]).toMatchObject({
      period_start: formatInstant(FROM),
      tokens_in: tin,
      tokens_out: tout,
      tokens_total: tin + tout,
      requests: events.length,
      steps: events.length,
      cost: usd(events.reduce((s, e) => s + e.cost, 0n)),
    });
  });

  it("filters by customer, model, feature and any dimension", async () => {
    const cases: [Record<string, string>, (e: TraceEvent) => boolean][] = [
      [{ customer: "s_bob" }, (e) => e.customer === "s_bob"],
      [{ model: "gpt-4o-mini" }, (e) => e.model === "gpt-4o-mini"],
      [{ feature: "a", workflow: "chat" }, (e) => e.feature === "a" && e.workflow === "chat"],
      [{ filter: "feature:b,model:gpt-4o" }, (e) => e.feature === "b" && e.model === "gpt-4o"],
      [{ type: "other.type" }, () => false],
    ];
    for (const [params, filter] of cases) {
      const res = await report("day", ["customer"], params);
      const expected = expectedRows(events, {
        granularity: "day",
        groupBy: ["customer"],
        from: FROM,
        to: TO,
        filter,
      });
      expect(actualRows(res.body.data, ["customer"]), JSON.stringify(params)).toEqual(expected);
    }
  });

  it("answers CSV (RFC 4180, header row) with the same rows", async () => {
    for (const [g, groupBy] of [
      ["week", ["customer", "model"]],
      ["hour", []],
      [null, ["feature", "workflow"]],
    ] as const) {
      const res = await report(g, [...groupBy], { format: "csv" });
      expect(res.headers.get("content-type")).toMatch(/^text\/csv/);
      expect(res.text.endsWith("\r\n")).toBe(true);
      const expected = expectedRows(events, { granularity: g, groupBy: [...groupBy], from: FROM, to: TO });
      expect(csvRows(res.text, [...groupBy])).toEqual(expected);
    }
  });

  it("counts a retried batch once", async () => {
    await replay(t, events.slice(0, 3000));
    const res = await report("month", ["model"]);
    expect(res.text).toBe(before[GROUPINGS.length * 4 + 1]);
  });

  it("gives the same numbers after rebuild-rollups", async () => {
    const { events: n } = await t.server.store.rebuildRollups();
    expect(n).toBe(events.length);
    expect(await checkAll()).toEqual(before);
  });

  it("gives the same numbers after retention purged every raw event", async () => {
    await t.api("PUT", "/v1/plans/short", { name: "Short", retention_days: 7 });
    for (const c of ["acme", "bob", "carol", "s_acme", "s_bob", "s_carol"]) {
      const res = await t.api("PUT", `/v1/customers/${c}`, { plan: "short" });
      expect(res.status, res.text).toBeLessThan(300);
    }
    const purged = await t.server.reports.applyRetention();
    expect(purged).toEqual({ customers: 6, events: events.length });
    const left = t.server.store.db.prepare("SELECT count(*) FROM events").pluck().get();
    expect(left).toBe(0);
    expect(await checkAll()).toEqual(before);
    // A rebuild keeps what only the rollups still know.
    await t.server.store.rebuildRollups();
    expect(await checkAll()).toEqual(before);
  });

  it("refuses what it cannot answer exactly", async () => {
    const bad = async (params: string, field: string) => {
      const err = expectError(await t.api("GET", `/v1/usage?${params}`), 400, "INVALID_REQUEST");
      expect(err.details?.field).toBe(field);
    };
    await bad("from=2024-01-01T00:30:00Z&to=2024-01-02T00:00:00Z", "query.from");
    await bad("from=2024-01-02T00:00:00Z&to=2024-01-01T00:00:00Z", "query.from");
    await bad("group_by=run", "group_by");
    await bad("group_by=cost", "group_by");
    await bad("group_by=model,model", "group_by");
    await bad("filter=nocolon", "filter");
    expect((await t.api("GET", "/v1/usage?granularity=year")).status).toBe(400);
    expect((await t.api("GET", "/v1/usage", undefined, { key: null })).status).toBe(401);
  });
});

describe("GET /v1/workflows/{id}/runs", () => {
  it("totals each run: steps, tokens, cost, first and last event", async () => {
    const runs = new Map<string, TraceEvent[]>();
    for (const e of events) {
      if (e.workflow !== "code" || e.customer.startsWith("s_")) continue;
      runs.set(e.run, [...(runs.get(e.run) ?? []), e]);
    }
    const seen: Record<string, unknown>[] = [];
    let cursor: string | undefined;
    do {
      const res = await t.api(
        "GET",
        `/v1/workflows/code/runs?${q({ to: "2023-12-01T00:00:00Z", limit: "500", cursor })}`,
      );
      expect(res.status, res.text).toBe(200);
      seen.push(...res.body.data);
      cursor = res.body.next_cursor;
    } while (cursor);
    expect(seen).toHaveLength(runs.size);
    for (const r of seen) {
      const evs = runs.get(r.run as string)!;
      const tin = evs.reduce((s, e) => s + e.tokensIn, 0);
      const tout = evs.reduce((s, e) => s + e.tokensOut, 0);
      expect(r).toMatchObject({
        total_steps: evs.length,
        requests: evs.length,
        tokens_in: tin,
        tokens_out: tout,
        cost: usd(evs.reduce((s, e) => s + e.cost, 0n)),
        started_at: formatInstant(Math.min(...evs.map((e) => e.timestamp))),
        ended_at: formatInstant(Math.max(...evs.map((e) => e.timestamp))),
      });
    }
    // Ordered by start.
    const starts = seen.map((r) => r.started_at as string);
    expect([...starts].sort()).toEqual(starts);
    expect((await t.api("GET", "/v1/workflows/nope/runs")).body).toEqual({ data: [] });
    expectError(await t.api("GET", "/v1/workflows/code/runs?cursor=zzz"), 400, "INVALID_REQUEST");
  });
});

describe("GET /v1/usage/summary", () => {
  it("daily, weekly and monthly series, model shares and rolling workflow totals", async () => {
    clock.set(Date.UTC(2024, 0, 20, 15, 30));
    const now = Date.UTC(2024, 0, 20, 16) - 1; // reports read whole hours: the current one counts whole
    const inRange = (from: number, to: number) =>
      events.filter((e) => e.timestamp >= from && e.timestamp < to);
    const sum = (evs: TraceEvent[]) => evs.reduce((s, e) => s + e.tokensIn + e.tokensOut, 0);

    const daily = (await t.api("GET", "/v1/usage/summary?view=daily")).body;
    expect(daily.data).toHaveLength(30);
    expect(daily.data[29].period_start).toBe("2024-01-20T00:00:00Z");
    expect(daily.to).toBe("2024-01-20T16:00:00Z");
    for (const d of daily.data) {
      const start = Date.parse(d.period_start);
      expect(d.tokens_total, d.period_start).toBe(sum(inRange(start, Math.min(start + 86_400_000, now + 1))));
    }

    const weekly = (await t.api("GET", "/v1/usage/summary?view=weekly")).body;
    expect(weekly.data).toHaveLength(12);
    expect(weekly.data[11].period_start).toBe("2024-01-15T00:00:00Z"); // a Monday
    for (const w of weekly.data) {
      const start = Date.parse(w.period_start);
      const cur = sum(inRange(start, Math.min(start + 7 * 86_400_000, now + 1)));
      const prev = sum(inRange(start - 7 * 86_400_000, start));
      expect(w.tokens_total).toBe(cur);
      expect(w.change.tokens_total_pct).toBe(
        prev === 0 ? null : Math.round(((cur - prev) / prev) * 10_000) / 100,
      );
    }

    const monthly = (await t.api("GET", "/v1/usage/summary?view=monthly")).body;
    expect(monthly.data).toHaveLength(12);
    expect(monthly.data.map((m: { period_start: string }) => m.period_start).slice(-3)).toEqual([
      "2023-11-01T00:00:00Z",
      "2023-12-01T00:00:00Z",
      "2024-01-01T00:00:00Z",
    ]);
    expect(monthly.trend.tokens_total.direction).toBe("up");

    const models = (
      await t.api("GET", "/v1/usage/summary?view=models&from=2023-11-01T00:00:00Z&to=2024-03-01T00:00:00Z")
    ).body;
    expect(models.data.map((m: { model: string }) => m.model).sort()).toEqual(["gpt-4o", "gpt-4o-mini"]);
    const all = sum(events);
    for (const m of models.data) {
      const mine = sum(events.filter((e) => e.model === m.model));
      expect(m.tokens_total).toBe(mine);
      expect(m.share.tokens_total_pct).toBe(Math.round((mine / all) * 10_000) / 100);
    }
    expect(models.total.tokens_total).toBe(all);

    const workflows = (await t.api("GET", "/v1/usage/summary?view=workflows")).body;
    const from = Date.UTC(2024, 0, 20, 16) - 30 * 86_400_000;
    for (const w of workflows.data) {
      expect(w.tokens_total).toBe(sum(inRange(from, now + 1).filter((e) => e.workflow === w.workflow)));
    }
    expect(workflows.data.length).toBe(2);
    clock.set(NOW);
  });
});
