import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TRACE_DIR } from "../support/azure.js";
import { startTestServer, type TestServer } from "../support/server.js";

/**
 * Replays the Azure LLM inference trace 2023 (conv.csv, 19,366 real requests) over HTTP and checks the
 * meters against sums computed here, from the file, independently of the server.
 *
 * Row i (0-based, header excluded) becomes event `conv_<i>` of type llm.completion for customer
 * `cust_<i mod 7>`, at the row's TIMESTAMP read as UTC and sent with all its digits
 * ("2023-11-16 18:15:46.6805900" → "2023-11-16T18:15:46.6805900Z"), with tokens_in = ContextTokens and
 * tokens_out = GeneratedTokens. The reference buckets rows by the hour written in the file
 * ("2023-11-16 18…" → 18:00Z), so it shares no date parsing with the server.
 */

const CUSTOMERS = 7;
const BATCH = 1_000;

interface Row {
  index: number;
  /** "2023-11-16 18:15:46.6805900", as in the file. */
  ts: string;
  /** "2023-11-16T18:00:00Z": the UTC hour the row falls in. */
  hour: string;
  customer: string;
  tokensIn: number;
  tokensOut: number;
}

function parseConv(): Row[] {
  const lines = readFileSync(`${TRACE_DIR}conv.csv`, "utf8").split("\n");
  expect(lines[0]!.trim()).toBe("TIMESTAMP,ContextTokens,GeneratedTokens");
  const rows: Row[] = [];
  for (const line of lines.slice(1)) {
    if (line.trim() === "") continue;
    const [ts, ctx, gen] = line.trim().split(",");
    expect(ts).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d+$/);
    expect(ctx).toMatch(/^\d+$/);
    expect(gen).toMatch(/^\d+$/);
    const index = rows.length;
    rows.push({
      index,
      ts: ts!,
      hour: `${ts!.slice(0, 10)}T${ts!.slice(11, 13)}:00:00Z`,
      customer: `cust_${index % CUSTOMERS}`,
      tokensIn: Number(ctx),
      tokensOut: Number(gen),
    });
  }
  return rows;
}

const toEvent = (r: Row) => ({
  id: `conv_${r.index}`,
  type: "llm.completion",
  customer: r.customer,
  timestamp: `${r.ts.replace(" ", "T")}Z`,
  values: { tokens_in: r.tokensIn, tokens_out: r.tokensOut },
});

const sum = (rows: Row[], f: (r: Row) => number) => rows.reduce((acc, r) => acc + f(r), 0);

/** Per UTC hour: [window_start, window_end, tokens_in, tokens_out], in time order. */
function hourly(rows: Row[]) {
  const by = new Map<string, { tokensIn: number; tokensOut: number }>();
  for (const r of rows) {
    const cell = by.get(r.hour) ?? { tokensIn: 0, tokensOut: 0 };
    cell.tokensIn += r.tokensIn;
    cell.tokensOut += r.tokensOut;
    by.set(r.hour, cell);
  }
  return [...by.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([hour, v]) => {
      const end = new Date(Date.parse(hour) + 3_600_000).toISOString().replace(".000Z", "Z");
      return { start: hour, end, ...v };
    });
}

interface QueryRow {
  window_start: string | null;
  window_end: string | null;
  value: number;
  groups: Record<string, string | null>;
}

let t: TestServer;
let rows: Row[];

beforeAll(async () => {
  rows = parseConv();
  t = await startTestServer();
  for (const [id, value] of [
    ["tokens_in", "tokens_in"],
    ["tokens_out", "tokens_out"],
  ]) {
    const res = await t.api("PUT", `/v1/meters/${id}`, {
      event_type: "llm.completion",
      aggregation: "sum",
      value,
    });
    expect(res.status).toBe(201);
  }
  expect(
    (await t.api("PUT", "/v1/meters/requests", { event_type: "llm.completion", aggregation: "count" }))
      .status,
  ).toBe(201);

  // All batches at once: concurrent requests share group commits.
  const batches: Row[][] = [];
  for (let i = 0; i < rows.length; i += BATCH) batches.push(rows.slice(i, i + BATCH));
  const answers = await Promise.all(
    batches.map((b) => t.api("POST", "/v1/events", { events: b.map(toEvent) })),
  );
  for (const [i, res] of answers.entries()) {
    expect(res.status, res.text).toBe(202);
    expect(res.body).toEqual({ accepted: batches[i]!.length, duplicates: 0 });
  }
}, 60_000);

afterAll(() => t?.close());

async function query(meter: string, params: string): Promise<QueryRow[]> {
  const res = await t.api("GET", `/v1/meters/${meter}/query${params ? `?${params}` : ""}`);
  expect(res.status, res.text).toBe(200);
  return res.body.data;
}

describe("replay of the Azure conv trace", () => {
  it("parses the whole file", () => {
    expect(rows.length).toBe(19_366);
    expect(new Set(rows.map((r) => r.hour))).toEqual(
      new Set(["2023-11-16T18:00:00Z", "2023-11-16T19:00:00Z"]),
    );
  });

  it("totals over the whole file equal the column sums", async () => {
    const [tin] = await query("tokens_in", "");
    const [tout] = await query("tokens_out", "");
    const [count] = await query("requests", "");
    expect(tin!.value).toBe(sum(rows, (r) => r.tokensIn));
    expect(tout!.value).toBe(sum(rows, (r) => r.tokensOut));
    expect(count!.value).toBe(rows.length);
  });

  it("each hourly window equals the sum of the rows in that UTC hour", async () => {
    const expected = hourly(rows);
    for (const [meter, pick] of [
      ["tokens_in", (h: (typeof expected)[number]) => h.tokensIn],
      ["tokens_out", (h: (typeof expected)[number]) => h.tokensOut],
    ] as const) {
      const got = await query(meter, "window=hour");
      expect(got).toEqual(
        expected.map((h) => ({ window_start: h.start, window_end: h.end, value: pick(h), groups: {} })),
      );
    }
  });

  it("per customer (?customer=cust_N), per hour, equals that customer's rows; customers add up", async () => {
    let totalIn = 0;
    for (let c = 0; c < CUSTOMERS; c++) {
      const mine = rows.filter((r) => r.customer === `cust_${c}`);
      const expected = hourly(mine);
      const gotIn = await query("tokens_in", `customer=cust_${c}&window=hour`);
      const gotOut = await query("tokens_out", `customer=cust_${c}&window=hour`);
      expect(gotIn.map((g) => [g.window_start, g.value])).toEqual(expected.map((h) => [h.start, h.tokensIn]));
      expect(gotOut.map((g) => [g.window_start, g.value])).toEqual(
        expected.map((h) => [h.start, h.tokensOut]),
      );
      totalIn += gotIn.reduce((acc, g) => acc + g.value, 0);
    }
    expect(totalIn).toBe(sum(rows, (r) => r.tokensIn));
    expect(await query("tokens_in", "customer=cust_7")).toEqual([]);
  });

  it("from/to select [from, to) at sub-second precision", async () => {
    // Bounds between two rows of the file, in the file's own format for the reference.
    const a = rows[5_000]!;
    const b = rows[12_000]!;
    const bound = (r: Row) => `${r.ts.slice(0, 19).replace(" ", "T")}Z`;
    const inRange = rows.filter(
      (r) => r.ts >= `${a.ts.slice(0, 19)}.0000000` && r.ts < `${b.ts.slice(0, 19)}.0000000`,
    );
    expect(inRange.length).toBeGreaterThan(5_000);
    const [got] = await query("tokens_in", `from=${bound(a)}&to=${bound(b)}`);
    expect(got!.value).toBe(sum(inRange, (r) => r.tokensIn));
    expect(got!.window_start).toBe(bound(a));
    expect(got!.window_end).toBe(bound(b));
  });

  it("replaying a batch again records nothing new", async () => {
    const res = await t.api("POST", "/v1/events", { events: rows.slice(0, BATCH).map(toEvent) });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ accepted: 0, duplicates: BATCH });
    const [count] = await query("requests", "");
    expect(count!.value).toBe(rows.length);
  });
});
