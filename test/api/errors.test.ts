import { ManualClock } from "@tollgate/core";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectError, startTestServer, type TestServer } from "../support/server.js";
import { type EventBody, expectInvalid, expectWellFormed, meterTotal } from "./helpers.js";

/** The error shape of API.md for every kind of bad request, and no 500 for any of them. */

const NOW = Date.UTC(2026, 10, 23, 10, 30, 0);
const HOUR = 3_600_000;
let t: TestServer;
let n = 0;

const event = (over: Partial<EventBody> = {}): EventBody => ({
  id: `e${++n}`,
  type: "llm.completion",
  customer: "acme",
  timestamp: "2026-11-23T09:00:00Z",
  values: { tokens_in: 10 },
  ...over,
});

/** A batch of five good events with `bad` at index 3. */
const batchWith = (bad: Record<string, unknown>) => ({
  events: [event(), event(), event(), { ...event(), ...bad }, event()],
});

beforeAll(async () => {
  t = await startTestServer({ clock: new ManualClock(NOW), apiRateLimit: null });
  const m = await t.api("PUT", "/v1/meters/tokens", {
    event_type: "llm.completion",
    aggregation: "sum",
    value: "tokens_in",
  });
  expect(m.status).toBe(201);
});
afterAll(() => t.close());

/** Every test below sends only rejected requests for customer "acme": nothing may be stored. */
const nothingStored = async () => expect(await meterTotal(t.api, "tokens", "acme")).toBe(0);

describe("bodies that are not JSON", () => {
  it("answers 400 to malformed JSON", async () => {
    for (const raw of ["{", '{"events": [}', "{'events': []}", '{"events": []} trailing', "nul", "\u0000"]) {
      for (const [method, path] of [
        ["POST", "/v1/events"],
        ["PUT", "/v1/customers/acme"],
        ["PUT", "/v1/meters/m2"],
      ] as const) {
        expectInvalid(await t.api(method, path, undefined, { raw }), "body");
      }
    }
    await nothingStored();
    expectError(await t.api("GET", "/v1/customers/acme"), 404, "NOT_FOUND");
  });

  it("answers 400 to an empty body sent as JSON", async () => {
    expectInvalid(await t.api("POST", "/v1/events", undefined, { raw: "" }), "body");
    expectInvalid(await t.api("PUT", "/v1/customers/acme", undefined, { raw: "" }), "body");
    expectError(await t.api("GET", "/v1/customers/acme"), 404, "NOT_FOUND");
  });

  it("answers 400 naming content-type to a body that is not application/json", async () => {
    const json = JSON.stringify({ events: [event()] });
    for (const contentType of [
      "text/plain",
      "text/plain; charset=utf-8",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
      "application/xml",
    ]) {
      const res = await t.api("POST", "/v1/events", undefined, {
        raw: contentType.startsWith("application/x-www") ? "events=1" : json,
        headers: { "content-type": contentType },
      });
      expectInvalid(res, "content-type");
    }
    const put = await t.api("PUT", "/v1/customers/acme", undefined, {
      raw: JSON.stringify({ name: "Acme" }),
      headers: { "content-type": "text/plain" },
    });
    expectInvalid(put, "content-type");
    expectError(await t.api("GET", "/v1/customers/acme"), 404, "NOT_FOUND");
    await nothingStored();
  });

  it("accepts application/json with a charset", async () => {
    const res = await t.api("PUT", "/v1/customers/charset", undefined, {
      raw: JSON.stringify({ name: "Ünïcode" }),
      headers: { "content-type": "application/json; charset=utf-8" },
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body.name).toBe("Ünïcode");
  });

  it("answers 413 PAYLOAD_TOO_LARGE above 1 MiB, and takes a large body below it", async () => {
    const padded = (count: number, pad: number) => ({
      events: Array.from({ length: count }, () => event({ dimensions: { note: "x".repeat(pad) } })),
    });
    const big = padded(1_000, 1_024);
    expect(JSON.stringify(big).length).toBeGreaterThan(1_048_576);
    expectError(await t.api("POST", "/v1/events", big), 413, "PAYLOAD_TOO_LARGE");
    const huge = JSON.stringify({ name: "x".repeat(3_000_000) });
    expectError(await t.api("PUT", "/v1/customers/acme", undefined, { raw: huge }), 413, "PAYLOAD_TOO_LARGE");
    await nothingStored();

    const fits = padded(700, 1_024);
    const size = Buffer.byteLength(JSON.stringify(fits));
    expect(size).toBeGreaterThan(700_000);
    expect(size).toBeLessThan(1_048_576);
    const ok = await t.api("POST", "/v1/events", {
      events: fits.events.map((e) => ({ ...e, customer: "big" })),
    });
    expect(ok.status, ok.text.slice(0, 300)).toBe(202);
    expect(ok.body.accepted).toBe(700);
  });
});

describe("routes", () => {
  it("answers 404 NOT_FOUND in the error shape to unknown routes", async () => {
    for (const [method, path] of [
      ["GET", "/v1/nope"],
      ["POST", "/v1/event"],
      ["GET", "/v2/customers"],
      ["PATCH", "/v1/customers/acme"],
      ["DELETE", "/v1/customers/acme"],
      ["GET", "/nope"], // ("/" itself is the dashboard)
    ] as const) {
      expectError(await t.api(method, path, method === "PATCH" ? {} : undefined), 404, "NOT_FOUND");
      expectError(await t.api(method, path, undefined, { key: null }), 404, "NOT_FOUND");
    }
  });
});

describe("schema violations", () => {
  it("names the unknown field", async () => {
    expectInvalid(await t.api("POST", "/v1/events", batchWith({ cost: 1 })), "events[3].cost", 3);
    expectInvalid(await t.api("POST", "/v1/events", { events: [event()], extra: true }), "extra");
    expectInvalid(await t.api("PUT", "/v1/customers/acme", { nme: "Acme" }), "nme");
    expectInvalid(
      await t.api("PUT", "/v1/meters/m2", { event_type: "x", aggregation: "count", window: "day" }),
      "window",
    );
    expectInvalid(await t.api("PUT", "/v1/plans/p", { name: "P", price: 10 }), "price");
    expectInvalid(await t.api("POST", "/v1/api-keys", { name: "k", role: "service", scope: "all" }), "scope");
    expectInvalid(await t.api("GET", "/v1/meters/tokens/query?customer=acme&windw=day"), "query.windw");
    await nothingStored();
    expectError(await t.api("GET", "/v1/customers/acme"), 404, "NOT_FOUND");
    expectError(await t.api("GET", "/v1/plans/p"), 404, "NOT_FOUND");
  });

  it("names the missing required field", async () => {
    const { id: _id, ...noId } = event();
    expectInvalid(await t.api("POST", "/v1/events", { events: [event(), noId] }), "events[1].id", 1);
    const { customer: _c, ...noCustomer } = event();
    expectInvalid(await t.api("POST", "/v1/events", { events: [noCustomer] }), "events[0].customer", 0);
    expectInvalid(await t.api("POST", "/v1/events", {}), "events");
    expectInvalid(await t.api("PUT", "/v1/meters/m2", { aggregation: "count" }), "event_type");
    expectInvalid(await t.api("PUT", "/v1/plans/p", {}), "name");
    expectInvalid(await t.api("POST", "/v1/api-keys", { name: "k" }), "role");
    await nothingStored();
  });

  it("names fields of the wrong type", async () => {
    expectInvalid(await t.api("POST", "/v1/events", { events: event() }), "events");
    expectInvalid(await t.api("POST", "/v1/events", batchWith({ customer: 42 })), "events[3].customer", 3);
    expectInvalid(await t.api("POST", "/v1/events", batchWith({ values: [1, 2] })), "events[3].values", 3);
    expectInvalid(
      await t.api("POST", "/v1/events", batchWith({ dimensions: { model: 4 } })),
      "events[3].dimensions.model",
      3,
    );
    expectInvalid(
      await t.api("POST", "/v1/events", batchWith({ timestamp: 1_795_000_000 })),
      "events[3].timestamp",
      3,
    );
    expectInvalid(await t.api("PUT", "/v1/customers/acme", { name: 5 }), "name");
    expectInvalid(await t.api("PUT", "/v1/customers/acme", { metadata: "x" }), "metadata");
    expectInvalid(
      await t.api("PUT", "/v1/meters/m2", { event_type: "x", aggregation: "avg" }),
      "aggregation",
    );
    expectInvalid(await t.api("POST", "/v1/api-keys", { name: "k", role: "customer" }), "role");
    expectInvalid(await t.api("PUT", "/v1/customers/acme", [{ name: "x" }]), "body");
    expectInvalid(await t.api("POST", "/v1/events", null), "body");
    await nothingStored();
  });

  it("rejects amounts that are not non-negative integers up to 2^53-1", async () => {
    const bad: unknown[] = [-1, 1.5, 0.1, 2 ** 53, 2 ** 53 + 2, 1e300, "1", "10", true, null, [], {}];
    for (const v of bad) {
      const res = await t.api("POST", "/v1/events", batchWith({ values: { tokens_in: v } }));
      expectInvalid(res, "events[3].values.tokens_in", 3);
    }
    for (const raw of ["1e400", "-0.5", "9007199254740993"]) {
      const body = `{"events":[{"id":"r","type":"llm.completion","customer":"acme","values":{"tokens_in":${raw}}}]}`;
      expectInvalid(
        await t.api("POST", "/v1/events", undefined, { raw: body }),
        "events[0].values.tokens_in",
        0,
      );
    }
    await nothingStored();
  });

  it("takes the bounds themselves: 0 and 2^53-1", async () => {
    const res = await t.api("POST", "/v1/events", {
      events: [
        event({ customer: "bounds", values: { tokens_in: 0 } }),
        event({ customer: "bounds", values: { tokens_in: Number.MAX_SAFE_INTEGER } }),
      ],
    });
    expect(res.status, res.text).toBe(202);
    expect(await meterTotal(t.api, "tokens", "bounds")).toBe(Number.MAX_SAFE_INTEGER);
  });

  it("rejects invalid timestamps, naming the event", async () => {
    for (const timestamp of [
      "2026-02-30T00:00:00Z",
      "2026-11-23",
      "2026-11-23T10:00:00",
      "2026-11-23T25:00:00Z",
      "23/11/2026 10:00",
      "yesterday",
      "",
      "2026-11-23T10:00:00+25:00",
    ]) {
      expectInvalid(await t.api("POST", "/v1/events", batchWith({ timestamp })), "events[3].timestamp", 3);
    }
    await nothingStored();
  });

  it("rejects timestamps more than 24 hours in the future, and takes up to 24 hours", async () => {
    const at = (ms: number) => new Date(NOW + ms).toISOString();
    for (const ahead of [24 * HOUR + 1, 24 * HOUR + 60_000, 365 * 24 * HOUR]) {
      expectInvalid(
        await t.api("POST", "/v1/events", batchWith({ timestamp: at(ahead) })),
        "events[3].timestamp",
        3,
      );
    }
    await nothingStored();
    const ok = await t.api("POST", "/v1/events", {
      events: [
        event({ customer: "future", timestamp: at(24 * HOUR), values: { tokens_in: 1 } }),
        event({ customer: "future", timestamp: at(23 * HOUR), values: { tokens_in: 2 } }),
        event({ customer: "future", timestamp: "2026-11-24T11:00:00+02:00", values: { tokens_in: 4 } }),
      ],
    });
    expect(ok.status, ok.text).toBe(202);
    expect(await meterTotal(t.api, "tokens", "future")).toBe(7);
  });

  it("takes ids up to 256 characters in the path, and rejects longer or malformed ones", async () => {
    const longest = "c".repeat(256);
    const created = await t.api("PUT", `/v1/customers/${longest}`, { name: "long" });
    expect(created.status, created.text).toBe(201);
    expect((await t.api("GET", `/v1/customers/${longest}`)).body.id).toBe(longest);
    const wide = "é".repeat(256);
    expect((await t.api("PUT", `/v1/customers/${encodeURIComponent(wide)}`, { name: "wide" })).status).toBe(
      201,
    );
    expectInvalid(await t.api("PUT", `/v1/customers/${"x".repeat(257)}`, { name: "x" }), "params.id");
    expectError(await t.api("GET", `/v1/customers/${"x".repeat(5_000)}`), 400, "INVALID_REQUEST");
    expectInvalid(await t.api("PUT", "/v1/customers/a%20b", { name: "x" }), "params.id");
    expectError(await t.api("GET", "/v1/customers/%E0%A4%A"), 400, "INVALID_REQUEST");
    expectError(await t.api("GET", "/v1/customers/%"), 400, "INVALID_REQUEST");
  });
});

describe("no 500 for any body", () => {
  const targets: [string, string][] = [
    ["POST", "/v1/events"],
    ["PUT", "/v1/customers/fuzz"],
    ["PUT", "/v1/meters/fuzz"],
    ["PUT", "/v1/plans/fuzz"],
    ["POST", "/v1/api-keys"],
    ["POST", "/v1/customers/fuzz/keys"],
  ];

  it("answers any JSON value with a success or a well-formed error", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...targets),
        fc.jsonValue({ maxDepth: 4 }),
        async ([method, path], body) => {
          expectWellFormed(await t.api(method, path, body));
        },
      ),
      { numRuns: 150 },
    );
  });

  it("answers near-valid events with a success or a well-formed error", async () => {
    const scalar = fc.oneof(
      fc.integer(),
      fc.double(),
      fc.string({ maxLength: 30 }),
      fc.boolean(),
      fc.constant(null),
      fc.constant(2 ** 53),
    );
    const field = fc.oneof(scalar, fc.dictionary(fc.string({ maxLength: 10 }), scalar, { maxKeys: 3 }));
    const fuzzEvent = fc.record(
      {
        id: fc.oneof(fc.string({ maxLength: 20 }), scalar),
        type: fc.oneof(fc.constant("llm.completion"), scalar),
        customer: fc.oneof(fc.constant("fuzz"), scalar),
        timestamp: fc.oneof(
          fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
          fc.string({ maxLength: 30 }),
          scalar,
        ),
        values: field,
        dimensions: field,
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(fuzzEvent, { maxLength: 5 }), async (events) => {
        expectWellFormed(await t.api("POST", "/v1/events", { events }));
      }),
      { numRuns: 150 },
    );
  });

  it("answers any query string with a success or a well-formed error", async () => {
    const param = fc.constantFrom("customer", "from", "to", "window", "group_by", "limit", "cursor", "x");
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("/v1/meters/tokens/query", "/v1/customers", "/v1/meters", "/v1/plans"),
        fc.array(fc.tuple(param, fc.string({ maxLength: 20 })), { maxLength: 4 }),
        async (path, pairs) => {
          const qs = new URLSearchParams(pairs).toString();
          expectWellFormed(await t.api("GET", `${path}?${qs}`));
        },
      ),
      { numRuns: 150 },
    );
  });

  it("answers any path segment with a success or a well-formed error", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 40 }), async (id) => {
        expectWellFormed(await t.api("GET", `/v1/customers/${encodeURIComponent(id)}`));
        expectWellFormed(await t.api("GET", `/v1/meters/${encodeURIComponent(id)}/query`));
      }),
      { numRuns: 100 },
    );
  });
});
