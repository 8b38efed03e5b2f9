import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectError, startTestServer, type TestServer } from "../support/server.js";
import { as, type Client, expectInvalid, newWorkspace } from "./helpers.js";

/** Customers (upsert, lists, end-user keys) and plans. */

let t: TestServer;
let api: Client;
beforeAll(async () => {
  t = await startTestServer({ apiRateLimit: null });
  api = t.api.bind(t);
  for (const plan of ["free", "pro"]) {
    expect((await api("PUT", `/v1/plans/${plan}`, { name: plan.toUpperCase() })).status).toBe(201);
  }
});
afterAll(() => t.close());

describe("PUT /v1/customers/{id}", () => {
  it("creates with 201, then replaces with 200", async () => {
    const first = await api("PUT", "/v1/customers/acme", { name: "Acme" });
    expect(first.status, first.text).toBe(201);
    expect(first.body).toMatchObject({ id: "acme", name: "Acme", plan: null, timezone: "UTC", metadata: {} });
    const second = await api("PUT", "/v1/customers/acme", { name: "Acme Inc" });
    expect(second.status, second.text).toBe(200);
    expect(second.body).toMatchObject({ id: "acme", name: "Acme Inc" });
    const got = await api("GET", "/v1/customers/acme");
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ id: "acme", name: "Acme Inc", timezone: "UTC" });
    expect(Date.parse(got.body.created_at)).toBeLessThanOrEqual(Date.parse(got.body.updated_at));
  });

  it("takes an empty body as an upsert with defaults", async () => {
    const res = await api("PUT", "/v1/customers/bare", {});
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({
      id: "bare",
      name: null,
      plan: null,
      timezone: "UTC",
      billing_anchor: null,
    });
  });

  it("keeps a field left out and clears a field set to null", async () => {
    const full = {
      name: "Keep",
      plan: "pro",
      timezone: "Europe/Berlin",
      billing_anchor: "2026-01-15T00:00:00Z",
      metadata: { tier: "gold", seats: 4 },
    };
    expect((await api("PUT", "/v1/customers/keep", full)).status).toBe(201);

    // Each field alone: the others stay.
    const renamed = await api("PUT", "/v1/customers/keep", { name: "Kept" });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ ...full, name: "Kept" });
    const replanned = await api("PUT", "/v1/customers/keep", { plan: "free" });
    expect(replanned.body).toMatchObject({ ...full, name: "Kept", plan: "free" });
    expect((await api("GET", "/v1/customers/keep")).body).toMatchObject({
      ...full,
      name: "Kept",
      plan: "free",
    });

    // null clears: name and plan to null, timezone back to UTC, metadata to {}, anchor to null.
    const cleared = await api("PUT", "/v1/customers/keep", { name: null, plan: null });
    expect(cleared.body).toMatchObject({
      name: null,
      plan: null,
      timezone: "Europe/Berlin",
      metadata: full.metadata,
    });
    const cleared2 = await api("PUT", "/v1/customers/keep", {
      timezone: null,
      metadata: null,
      billing_anchor: null,
    });
    expect(cleared2.body).toMatchObject({
      name: null,
      plan: null,
      timezone: "UTC",
      metadata: {},
      billing_anchor: null,
    });
    expect((await api("GET", "/v1/customers/keep")).body).toMatchObject(cleared2.body);
  });

  it("normalizes billing_anchor to UTC", async () => {
    const res = await api("PUT", "/v1/customers/anchor", { billing_anchor: "2026-03-10T12:00:00+02:00" });
    expect(res.status).toBe(201);
    expect(Date.parse(res.body.billing_anchor)).toBe(Date.UTC(2026, 2, 10, 10, 0, 0));
    expect(res.body.billing_anchor).toMatch(/Z$/);
  });

  it("answers 400 naming plan for an unknown plan, and changes nothing", async () => {
    expectInvalid(await api("PUT", "/v1/customers/noplan", { name: "N", plan: "enterprise" }), "plan");
    expectError(await api("GET", "/v1/customers/noplan"), 404, "NOT_FOUND");
    expect((await api("PUT", "/v1/customers/withplan", { name: "W", plan: "pro" })).status).toBe(201);
    expectInvalid(
      await api("PUT", "/v1/customers/withplan", { name: "Changed", plan: "enterprise" }),
      "plan",
    );
    expect((await api("GET", "/v1/customers/withplan")).body).toMatchObject({ name: "W", plan: "pro" });
  });

  it("answers 400 naming timezone for an invalid IANA zone", async () => {
    for (const timezone of ["Mars/Olympus_Mons", "UTC+25", "Europe/Berlinn", "not a zone"]) {
      expectInvalid(await api("PUT", "/v1/customers/tz", { timezone }), "timezone");
    }
    expectInvalid(await api("PUT", "/v1/customers/tz", { timezone: "" }), "timezone");
    expectError(await api("GET", "/v1/customers/tz"), 404, "NOT_FOUND");
    for (const timezone of ["America/New_York", "Asia/Kolkata", "Pacific/Chatham", "UTC"]) {
      const res = await api("PUT", "/v1/customers/tz", { timezone });
      expect(res.status, res.text).toBeLessThan(300);
      expect(res.body.timezone).toBe(timezone);
    }
  });

  it("answers 400 for an invalid billing_anchor or oversized metadata", async () => {
    expectInvalid(
      await api("PUT", "/v1/customers/bad", { billing_anchor: "next tuesday" }),
      "billing_anchor",
    );
    expectInvalid(
      await api("PUT", "/v1/customers/bad", { metadata: { blob: "x".repeat(20_000) } }),
      "metadata",
    );
    expectInvalid(await api("PUT", "/v1/customers/bad", { metadata: [1, 2] }), "metadata");
    expectError(await api("GET", "/v1/customers/bad"), 404, "NOT_FOUND");
  });

  it("answers 404 for an unknown customer", async () => {
    expectError(await api("GET", "/v1/customers/nobody"), 404, "NOT_FOUND");
  });
});

describe("GET /v1/customers", () => {
  let ws: Client;
  let ids: string[];

  beforeAll(async () => {
    ws = (await newWorkspace(t, "paging")).api;
    // 25 ids of mixed lengths and characters, inserted in random order.
    ids = fc.sample(fc.stringMatching(/^[a-z0-9][a-z0-9_.-]{0,11}$/), { numRuns: 200, seed: 42 });
    ids = [...new Set(ids)].slice(0, 25);
    expect(ids).toHaveLength(25);
    for (const id of ids) {
      const res = await ws("PUT", `/v1/customers/${id}`, { name: `n-${id}` });
      expect(res.status, res.text).toBe(201);
    }
  });

  /** Follows next_cursor from the first page; returns each page's ids. */
  async function pages(limit: number): Promise<string[][]> {
    const out: string[][] = [];
    let cursor: string | undefined;
    for (let i = 0; i < 100; i++) {
      const qs = new URLSearchParams({ limit: String(limit), ...(cursor ? { cursor } : {}) });
      const res = await ws("GET", `/v1/customers?${qs}`);
      expect(res.status, res.text).toBe(200);
      out.push(
        res.body.data.map((c: { id: string; name: string }) => {
          expect(c.name).toBe(`n-${c.id}`);
          return c.id;
        }),
      );
      if (!("next_cursor" in res.body)) return out;
      cursor = res.body.next_cursor;
      expect(typeof cursor).toBe("string");
    }
    throw new Error("pagination did not end");
  }

  const sorted = () => [...ids].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

  it("returns every customer exactly once, in id order, 10 at a time", async () => {
    const got = await pages(10);
    expect(got.map((p) => p.length)).toEqual([10, 10, 5]);
    expect(got.flat()).toEqual(sorted());
  });

  it("ends without next_cursor when the last page is full", async () => {
    const got = await pages(5);
    expect(got.map((p) => p.length)).toEqual([5, 5, 5, 5, 5]);
    expect(got.flat()).toEqual(sorted());
    expect((await pages(25)).map((p) => p.length)).toEqual([25]);
    expect((await pages(24)).map((p) => p.length)).toEqual([24, 1]);
    expect((await pages(1)).flat()).toEqual(sorted());
  });

  it("returns up to 100 without a limit, and pages of up to 500", async () => {
    const res = await ws("GET", "/v1/customers");
    expect(res.body.data.map((c: { id: string }) => c.id)).toEqual(sorted());
    expect(res.body).not.toHaveProperty("next_cursor");
    expect((await ws("GET", "/v1/customers?limit=500")).status).toBe(200);
  });

  it("sees a customer created between pages", async () => {
    const first = await ws("GET", "/v1/customers?limit=10");
    const late = "zzzz-late";
    expect((await ws("PUT", `/v1/customers/${late}`, { name: `n-${late}` })).status).toBe(201);
    ids.push(late);
    const rest: string[] = [];
    let cursor: string | undefined = first.body.next_cursor;
    while (cursor) {
      const res = await ws("GET", `/v1/customers?limit=10&cursor=${encodeURIComponent(cursor)}`);
      rest.push(...res.body.data.map((c: { id: string }) => c.id));
      cursor = res.body.next_cursor;
    }
    expect([...first.body.data.map((c: { id: string }) => c.id), ...rest]).toEqual(sorted());
  });

  it("answers 400 to a bad cursor or limit", async () => {
    for (const cursor of ["!!!", "%%%", "a b", "\u00ff\u00fe"]) {
      const res = await ws("GET", `/v1/customers?cursor=${encodeURIComponent(cursor)}`);
      const error = expectError(res, 400, "INVALID_REQUEST");
      expect(String(error.details?.field)).toMatch(/cursor$/);
    }
    for (const limit of ["0", "501", "-1", "abc", "1.5", "10000", ""]) {
      const res = await ws("GET", `/v1/customers?limit=${limit}`);
      const error = expectError(res, 400, "INVALID_REQUEST");
      expect(String(error.details?.field)).toMatch(/limit$/);
    }
  });
});

describe("plans", () => {
  it("creates with 201, replaces with 200, and reads back", async () => {
    const body = { name: "Team", retention_days: 90 };
    const first = await api("PUT", "/v1/plans/team", body);
    expect(first.status, first.text).toBe(201);
    expect(first.body).toMatchObject({ id: "team", name: "Team", retention_days: 90 });
    const second = await api("PUT", "/v1/plans/team", { name: "Team 2" });
    expect(second.status).toBe(200);
    const got = await api("GET", "/v1/plans/team");
    expect(got.body).toMatchObject({ id: "team", name: "Team 2" });
    const list = await api("GET", "/v1/plans");
    expect(list.body.data.map((p: { id: string }) => p.id)).toEqual(["free", "pro", "team"]);
  });

  it("keeps inline limits that name an existing meter", async () => {
    const meter = await api("PUT", "/v1/meters/tokens", {
      event_type: "llm.completion",
      aggregation: "sum",
      value: ["tokens_in", "tokens_out"],
    });
    expect(meter.status).toBe(201);
    const res = await api("PUT", "/v1/plans/metered", {
      name: "Metered",
      limits: [{ id: "monthly", meter: "tokens", amount: 1_000_000, period: "month" }],
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body.limits).toHaveLength(1);
    expect(res.body.limits[0]).toMatchObject({ id: "monthly", meter: "tokens", amount: 1_000_000 });
  });

  it("answers 400 naming the field for invalid plans, and changes nothing", async () => {
    expectInvalid(await api("PUT", "/v1/plans/bad", { retention_days: 30 }), "name");
    expectInvalid(await api("PUT", "/v1/plans/bad", { name: "" }), "name");
    expectInvalid(await api("PUT", "/v1/plans/bad", { name: "B", retention_days: 0 }), "retention_days");
    expectInvalid(
      await api("PUT", "/v1/plans/bad", {
        name: "B",
        limits: [{ id: "l", meter: "no-such-meter", amount: 5, period: "day" }],
      }),
      "limits[0].meter",
    );
    expectInvalid(
      await api("PUT", "/v1/plans/bad", {
        name: "B",
        limits: [{ id: "l", meter: "tokens", amount: -5, period: "day" }],
      }),
      "limits[0].amount",
    );
    expectError(await api("GET", "/v1/plans/bad"), 404, "NOT_FOUND");
    expectInvalid(await api("PUT", "/v1/plans/pro", { name: "Pro", retention_days: "30" }), "retention_days");
    expect((await api("GET", "/v1/plans/pro")).body).toMatchObject({ name: "PRO", retention_days: null });
  });

  it("answers 404 for an unknown plan", async () => {
    expectError(await api("GET", "/v1/plans/ghost"), 404, "NOT_FOUND");
  });
});

describe("end-user keys", () => {
  beforeAll(async () => {
    expect((await api("PUT", "/v1/customers/keyed", { name: "Keyed" })).status).toBe(201);
    expect((await api("PUT", "/v1/customers/other", { name: "Other" })).status).toBe(201);
  });

  it("creates a key shown once, lists it without plaintext, deletes it once", async () => {
    const created = await api("POST", "/v1/customers/keyed/keys", { name: "mobile app" });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({ id: expect.any(String), key: expect.any(String) });
    const { id, key } = created.body as { id: string; key: string };
    expect(key.startsWith("tgu_")).toBe(true);
    expect(key.length).toBeGreaterThanOrEqual(20);
    const second = await api("POST", "/v1/customers/keyed/keys", { name: "web app" });
    expect(second.body.key).not.toBe(key);

    const list = await api("GET", "/v1/customers/keyed/keys");
    expect(list.status).toBe(200);
    expect(list.body.data.map((k: { id: string }) => k.id).sort()).toEqual([id, second.body.id].sort());
    expect(list.text).not.toContain(key);
    expect(list.text).not.toContain(second.body.key);
    for (const k of list.body.data) expect(k).not.toHaveProperty("key");
    expect((await api("GET", "/v1/customers/other/keys")).body.data).toEqual([]);

    // Another customer's path does not reach this key.
    expectError(await api("DELETE", `/v1/customers/other/keys/${id}`), 404, "NOT_FOUND");
    const del = await api("DELETE", `/v1/customers/keyed/keys/${id}`);
    expect(del.status, del.text).toBe(204);
    expect(del.text).toBe("");
    expectError(await api("DELETE", `/v1/customers/keyed/keys/${id}`), 404, "NOT_FOUND");
    const after = await api("GET", "/v1/customers/keyed/keys");
    expect(after.body.data.map((k: { id: string }) => k.id)).toEqual([second.body.id]);
    // The surviving key still authenticates (403 on /v1, not 401).
    expectError(await as(t, second.body.key)("GET", "/v1/customers"), 403, "FORBIDDEN");
    expectError(await as(t, key)("GET", "/v1/customers"), 401, "UNAUTHORIZED");
  });

  it("answers 404 for keys of a customer that does not exist", async () => {
    expectError(await api("POST", "/v1/customers/ghost/keys", { name: "k" }), 404, "NOT_FOUND");
    expectError(await api("GET", "/v1/customers/ghost/keys"), 404, "NOT_FOUND");
    expectError(await api("DELETE", "/v1/customers/ghost/keys/ukey_123"), 404, "NOT_FOUND");
    expectError(await api("DELETE", "/v1/customers/keyed/keys/ukey_123"), 404, "NOT_FOUND");
  });

  it("answers 400 without a name", async () => {
    expectInvalid(await api("POST", "/v1/customers/keyed/keys", {}), "name");
    expectInvalid(await api("POST", "/v1/customers/keyed/keys", { name: "" }), "name");
  });
});
