import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectError, startTestServer, type TestServer } from "../support/server.js";
import { as, type Client, type EventBody, meterTotal, newWorkspace } from "./helpers.js";

/** Auth, roles and tenancy: who may call what, and what one workspace can see of another. */

let t: TestServer;
let admin: Client;
let serviceKey: string;
let serviceKeyId: string;
let service: Client;
let userKey: string;
let userKeyId: string;
const plaintexts: string[] = [];

const ts = "2026-11-23T08:00:00Z";
const events1: EventBody[] = [
  { id: "evt_1", type: "llm.completion", customer: "acme", timestamp: ts, values: { tokens_in: 100 } },
  { id: "evt_2", type: "llm.completion", customer: "acme", timestamp: ts, values: { tokens_in: 20 } },
];

beforeAll(async () => {
  t = await startTestServer();
  admin = t.api.bind(t);
  plaintexts.push(t.adminKey);
  for (const [path, body] of [
    ["/v1/plans/pro", { name: "Pro" }],
    ["/v1/customers/acme", { name: "Acme", plan: "pro" }],
    ["/v1/meters/tokens", { event_type: "llm.completion", aggregation: "sum", value: "tokens_in" }],
  ] as const) {
    const res = await admin("PUT", path, body);
    expect(res.status, res.text).toBe(201);
  }
  const svc = await admin("POST", "/v1/api-keys", { name: "backend", role: "service" });
  expect(svc.status, svc.text).toBe(201);
  expect(svc.body).toMatchObject({ id: expect.any(String), key: expect.any(String), role: "service" });
  serviceKey = svc.body.key;
  serviceKeyId = svc.body.id;
  service = as(t, serviceKey);
  plaintexts.push(serviceKey);
  const user = await admin("POST", "/v1/customers/acme/keys", { name: "acme app" });
  expect(user.status, user.text).toBe(201);
  userKey = user.body.key;
  userKeyId = user.body.id;
  plaintexts.push(userKey);
  const ev = await admin("POST", "/v1/events", { events: events1 });
  expect(ev.status, ev.text).toBe(202);
});
afterAll(() => t.close());

describe("bearer keys", () => {
  const routes: [string, string, unknown?][] = [
    ["GET", "/v1/customers"],
    ["GET", "/v1/customers/acme"],
    ["PUT", "/v1/customers/acme", { name: "x" }],
    ["POST", "/v1/events", { events: [{ id: "z", type: "llm.completion", customer: "acme" }] }],
    ["GET", "/v1/meters/tokens/query"],
    ["GET", "/v1/api-keys"],
  ];

  it("answers 401 UNAUTHORIZED without an Authorization header", async () => {
    for (const [method, path, body] of routes) {
      expectError(await t.api(method, path, body, { key: null }), 401, "UNAUTHORIZED");
    }
  });

  it("answers 401 for malformed Authorization headers", async () => {
    const malformed = [
      `Basic ${Buffer.from(`user:${t.adminKey}`).toString("base64")}`,
      "Bearer",
      "Bearer ",
      `Bearer ${t.adminKey} extra`,
      t.adminKey,
      `Token ${t.adminKey}`,
      "",
    ];
    for (const header of malformed) {
      for (const [method, path, body] of routes) {
        const res = await t.api(method, path, body, { key: null, headers: { authorization: header } });
        expectError(res, 401, "UNAUTHORIZED");
      }
    }
  });

  it("answers 401 for keys that do not exist", async () => {
    for (const key of ["tg_nope", `${t.adminKey}x`, t.adminKey.slice(0, -1), "tgu_abcdefghijklmnop"]) {
      for (const [method, path, body] of routes) {
        expectError(await t.api(method, path, body, { key }), 401, "UNAUTHORIZED");
      }
    }
  });

  it("changes nothing on a 401", async () => {
    expectError(
      await t.api("PUT", "/v1/customers/ghost", { name: "g" }, { key: "tg_bad" }),
      401,
      "UNAUTHORIZED",
    );
    expectError(await admin("GET", "/v1/customers/ghost"), 404, "NOT_FOUND");
    const events = [{ id: "unauth_1", type: "llm.completion", customer: "acme", values: { tokens_in: 5 } }];
    expectError(await t.api("POST", "/v1/events", { events }, { key: "tg_bad" }), 401, "UNAUTHORIZED");
    expect(await meterTotal(admin, "tokens", "acme")).toBe(120);
  });

  it("accepts the scheme name in any case (RFC 9110)", async () => {
    const res = await t.api("GET", "/v1/customers/acme", undefined, {
      key: null,
      headers: { authorization: `bearer ${t.adminKey}` },
    });
    expect(res.status, res.text).toBe(200);
  });
});

describe("roles", () => {
  it("lets a service key record events and read customers, plans and meters", async () => {
    const ev = await service("POST", "/v1/events", {
      events: [{ id: "svc_1", type: "llm.completion", customer: "svc-cust", values: { tokens_in: 7 } }],
    });
    expect(ev.status, ev.text).toBe(202);
    expect(ev.body).toEqual({ accepted: 1, duplicates: 0 });
    const customer = await service("GET", "/v1/customers/acme");
    expect(customer.status, customer.text).toBe(200);
    expect(customer.body).toMatchObject({ id: "acme", name: "Acme", plan: "pro" });
    const list = await service("GET", "/v1/customers");
    expect(list.status).toBe(200);
    expect(list.body.data.map((c: { id: string }) => c.id)).toContain("acme");
    expect((await service("GET", "/v1/plans/pro")).status).toBe(200);
    expect((await service("GET", "/v1/meters")).status).toBe(200);
    expect((await service("GET", "/v1/meters/tokens")).status).toBe(200);
    expect(await meterTotal(service, "tokens", "svc-cust")).toBe(7);
  });

  it("answers 403 FORBIDDEN to a service key on admin routes", async () => {
    const adminOnly: [string, string, unknown?][] = [
      ["POST", "/v1/api-keys", { name: "sneaky", role: "admin" }],
      ["GET", "/v1/api-keys"],
      ["DELETE", `/v1/api-keys/${serviceKeyId}`],
      ["PUT", "/v1/plans/pro", { name: "Hacked" }],
      ["PUT", "/v1/meters/tokens", { event_type: "llm.completion", aggregation: "count" }],
      ["PUT", "/v1/customers/acme", { name: "Hacked" }],
      ["PUT", "/v1/customers/newbie", { name: "New" }],
      ["POST", "/v1/customers/acme/keys", { name: "k" }],
    ];
    for (const [method, path, body] of adminOnly) {
      expectError(await service(method, path, body), 403, "FORBIDDEN");
    }
    // Nothing of those requests happened.
    expect((await admin("GET", "/v1/plans/pro")).body.name).toBe("Pro");
    expect((await admin("GET", "/v1/customers/acme")).body.name).toBe("Acme");
    expectError(await admin("GET", "/v1/customers/newbie"), 404, "NOT_FOUND");
    expect((await admin("GET", "/v1/meters/tokens")).body.aggregation).toBe("sum");
    const keys = await admin("GET", "/v1/api-keys");
    expect(keys.body.data.map((k: { id: string }) => k.id)).toContain(serviceKeyId);
    expect(keys.body.data.map((k: { name: string }) => k.name)).not.toContain("sneaky");
    expect((await service("GET", "/v1/customers/acme")).status).toBe(200);
  });

  it("answers 403 to an end-user key on every /v1 route", async () => {
    const user = as(t, userKey);
    expect(userKey.startsWith("tgu_")).toBe(true);
    for (const [method, path, body] of [
      ["GET", "/v1/customers"],
      ["GET", "/v1/customers/acme"],
      ["GET", "/v1/meters/tokens/query?customer=acme"],
      ["POST", "/v1/events", { events: [{ id: "u1", type: "llm.completion", customer: "acme" }] }],
      ["GET", "/v1/api-keys"],
      ["PUT", "/v1/customers/acme", { name: "mine" }],
    ] as [string, string, unknown?][]) {
      expectError(await user(method, path, body), 403, "FORBIDDEN");
    }
    expect(await meterTotal(admin, "tokens", "acme")).toBe(120);
  });
});

describe("tenancy", () => {
  let ws2: Client;
  let ws2Key: string;

  beforeAll(async () => {
    const ws = await newWorkspace(t, "ws2");
    ws2 = ws.api;
    ws2Key = ws.key;
    plaintexts.push(ws2Key);
  });

  it("answers 404 (never 403) for another workspace's ids", async () => {
    const foreign: [string, string, unknown?][] = [
      ["GET", "/v1/customers/acme"],
      ["GET", "/v1/plans/pro"],
      ["GET", "/v1/meters/tokens"],
      ["GET", "/v1/meters/tokens/query"],
      ["GET", "/v1/meters/tokens/query?customer=acme&window=day"],
      ["GET", "/v1/customers/acme/keys"],
      ["POST", "/v1/customers/acme/keys", { name: "stolen" }],
      ["DELETE", `/v1/customers/acme/keys/${userKeyId}`],
      ["DELETE", `/v1/api-keys/${serviceKeyId}`],
    ];
    for (const [method, path, body] of foreign) {
      expectError(await ws2(method, path, body), 404, "NOT_FOUND");
    }
    // The first workspace's keys survived the attempts.
    const userKeys = await admin("GET", "/v1/customers/acme/keys");
    expect(userKeys.body.data.map((k: { id: string }) => k.id)).toEqual([userKeyId]);
    expect((await service("GET", "/v1/customers/acme")).status).toBe(200);
  });

  it("lists only the caller's own customers, plans, meters and keys", async () => {
    for (const path of ["/v1/customers", "/v1/plans", "/v1/meters"]) {
      const res = await ws2("GET", path);
      expect(res.status, res.text).toBe(200);
      expect(res.body.data, path).toEqual([]);
    }
    const keys = await ws2("GET", "/v1/api-keys");
    expect(keys.body.data).toHaveLength(1);
    expect(keys.body.data[0].role).toBe("admin");
    const ids1 = (await admin("GET", "/v1/api-keys")).body.data.map((k: { id: string }) => k.id);
    expect(ids1).not.toContain(keys.body.data[0].id);
  });

  it("keeps same-named objects of two workspaces apart", async () => {
    const created = await ws2("PUT", "/v1/customers/acme", { name: "Other Acme" });
    expect(created.status, created.text).toBe(201);
    expect((await admin("GET", "/v1/customers/acme")).body.name).toBe("Acme");
    expect((await ws2("GET", "/v1/customers/acme")).body.name).toBe("Other Acme");
    // ws2's plan "pro" does not exist: its customer cannot use the first workspace's plan.
    const res = await ws2("PUT", "/v1/customers/acme", { plan: "pro" });
    expectError(res, 400, "INVALID_REQUEST");
    expect(res.body.error.details.field).toBe("plan");
  });

  it("treats event ids per workspace: the same ids in ws2 are new events", async () => {
    const m = await ws2("PUT", "/v1/meters/tokens", {
      event_type: "llm.completion",
      aggregation: "sum",
      value: "tokens_in",
    });
    expect(m.status).toBe(201);
    // Same ids, different bodies: in one workspace that would be 409; here they are new.
    const other = events1.map((e) => ({ ...e, values: { tokens_in: (e.values?.tokens_in ?? 0) * 3 } }));
    const res = await ws2("POST", "/v1/events", { events: other });
    expect(res.status, res.text).toBe(202);
    expect(res.body).toEqual({ accepted: 2, duplicates: 0 });
    expect(await meterTotal(ws2, "tokens", "acme")).toBe(360);
    expect(await meterTotal(admin, "tokens", "acme")).toBe(120);
    // And in ws1 the original ids are still duplicates of ws1's own events.
    const again = await admin("POST", "/v1/events", { events: events1 });
    expect(again.body).toEqual({ accepted: 0, duplicates: 2 });
  });

  it("records identical events in two workspaces independently", async () => {
    const ws3 = await newWorkspace(t, "ws3");
    const put = await ws3.api("PUT", "/v1/meters/tokens", {
      event_type: "llm.completion",
      aggregation: "sum",
      value: "tokens_in",
    });
    expect(put.status).toBe(201);
    const res = await ws3.api("POST", "/v1/events", { events: events1 });
    expect(res.body).toEqual({ accepted: 2, duplicates: 0 });
    expect(await meterTotal(ws3.api, "tokens", "acme")).toBe(120);
    expect(await meterTotal(admin, "tokens", "acme")).toBe(120);
    plaintexts.push(ws3.key);
  });
});

describe("key storage", () => {
  // Reads the SQLite file itself; under STORE=postgres there is none.
  it.skipIf(process.env.STORE?.startsWith("postgres"))("stores keys only as hashes", async () => {
    const db = new Database(join(t.dataDir, "tollgate.db"), { readonly: true, fileMustExist: true });
    try {
      const rows = db.prepare("SELECT * FROM api_keys").all() as Record<string, unknown>[];
      expect(rows.length).toBeGreaterThanOrEqual(plaintexts.length);
      for (const row of rows) {
        for (const value of Object.values(row)) {
          for (const key of plaintexts) expect(String(value)).not.toContain(key);
        }
      }
      // Every plaintext handed out maps to exactly one stored row (by id), so the check above saw it.
      const ids = new Set(rows.map((r) => r.id));
      expect(ids.has(serviceKeyId)).toBe(true);
      expect(ids.has(userKeyId)).toBe(true);
    } finally {
      db.close();
    }
    // Nor anywhere else in the database files (main file, WAL).
    for (const file of readdirSync(t.dataDir).filter((f) => f.startsWith("tollgate.db"))) {
      const bytes = readFileSync(join(t.dataDir, file));
      for (const key of plaintexts) expect(bytes.includes(Buffer.from(key)), `${key} in ${file}`).toBe(false);
    }
  });

  it("never lists plaintext keys", async () => {
    const keys = await admin("GET", "/v1/api-keys");
    const userKeys = await admin("GET", "/v1/customers/acme/keys");
    for (const res of [keys, userKeys]) {
      expect(res.status).toBe(200);
      for (const key of plaintexts) expect(res.text).not.toContain(key);
      for (const k of res.body.data) expect(k).not.toHaveProperty("key");
    }
    expect(keys.body.data.map((k: { id: string }) => k.id)).toContain(serviceKeyId);
  });
});

describe("deleting keys", () => {
  it("refuses to delete a workspace's last admin key (409)", async () => {
    const ws = await newWorkspace(t, "lonely");
    const keys = await ws.api("GET", "/v1/api-keys");
    expect(keys.body.data).toHaveLength(1);
    const res = await ws.api("DELETE", `/v1/api-keys/${keys.body.data[0].id}`);
    expectError(res, 409, "CONFLICT");
    expect((await ws.api("GET", "/v1/api-keys")).status).toBe(200);

    // With a second admin, either may go; then the survivor is the last one again.
    const second = await ws.api("POST", "/v1/api-keys", { name: "second", role: "admin" });
    expect(second.status).toBe(201);
    expect(second.body.role).toBe("admin");
    const del = await as(t, second.body.key)("DELETE", `/v1/api-keys/${keys.body.data[0].id}`);
    expect(del.status, del.text).toBe(204);
    expectError(await ws.api("GET", "/v1/api-keys"), 401, "UNAUTHORIZED");
    const survivor = as(t, second.body.key);
    expectError(await survivor("DELETE", `/v1/api-keys/${second.body.id}`), 409, "CONFLICT");
  });

  it("stops a deleted key at once (401), and a second delete is 404", async () => {
    const created = await admin("POST", "/v1/api-keys", { name: "temp", role: "service" });
    const temp = as(t, created.body.key);
    expect((await temp("GET", "/v1/customers")).status).toBe(200); // now known to the server
    const del = await admin("DELETE", `/v1/api-keys/${created.body.id}`);
    expect(del.status, del.text).toBe(204);
    expectError(await temp("GET", "/v1/customers"), 401, "UNAUTHORIZED");
    expectError(
      await temp("POST", "/v1/events", {
        events: [{ id: "late", type: "llm.completion", customer: "acme" }],
      }),
      401,
      "UNAUTHORIZED",
    );
    expectError(await admin("DELETE", `/v1/api-keys/${created.body.id}`), 404, "NOT_FOUND");
    const ids = (await admin("GET", "/v1/api-keys")).body.data.map((k: { id: string }) => k.id);
    expect(ids).not.toContain(created.body.id);
  });

  it("stops a deleted admin key at once", async () => {
    const created = await admin("POST", "/v1/api-keys", { name: "admin2", role: "admin" });
    const admin2 = as(t, created.body.key);
    expect((await admin2("GET", "/v1/api-keys")).status).toBe(200);
    expect((await admin("DELETE", `/v1/api-keys/${created.body.id}`)).status).toBe(204);
    expectError(await admin2("GET", "/v1/api-keys"), 401, "UNAUTHORIZED");
  });

  it("stops a deleted end-user key at once", async () => {
    const created = await admin("POST", "/v1/customers/acme/keys", { name: "short-lived" });
    const user = as(t, created.body.key);
    expectError(await user("GET", "/v1/customers"), 403, "FORBIDDEN"); // known, but not for /v1
    expect((await admin("DELETE", `/v1/customers/acme/keys/${created.body.id}`)).status).toBe(204);
    expectError(await user("GET", "/v1/customers"), 401, "UNAUTHORIZED");
  });
});
