import { afterAll, describe, expect, it } from "vitest";
import { call, expectError } from "../support/server.js";
import { check, closeAll, customerLimit, freshServer, iso, put, putCustomer, T0 } from "./helpers.js";

afterAll(closeAll);

async function setup() {
  const env = await freshServer();
  await putCustomer(env.t, "acme");
  await put(env.t, "/v1/limits/cap", { customer: "acme", meter: "tokens", amount: 1000, period: "month" });
  return env;
}

const meterValue = async (t: Awaited<ReturnType<typeof setup>>["t"]) => {
  const q = await t.api("GET", "/v1/meters/tokens/query?customer=acme");
  expect(q.status).toBe(200);
  return q.body.data.reduce((s: number, r: { value: number }) => s + r.value, 0) as number;
};

describe("commit", () => {
  it("records the actual event, releases the hold and reconciles the estimate", async () => {
    const { t } = await setup();
    const r = await check(
      t,
      { customer: "acme", values: { tokens_in: 500 }, dimensions: { model: "m1" } },
      {
        ttl_seconds: 60,
      },
    );
    const id = r.reservation!.id;
    expect(r.reservation!.expires_at).toBe(iso(T0 + 60_000));
    const got = await t.api("GET", `/v1/reservations/${id}`);
    expect(got.body).toMatchObject({
      id,
      state: "active",
      customer: "acme",
      event: { type: "llm.completion", values: { tokens_in: 500 } },
    });
    expect(await meterValue(t)).toBe(0);
    expect(await customerLimit(t, "acme", "cap")).toMatchObject({ used: 0, reserved: 500, remaining: 500 });
    // A second estimate of 500 fits; a third of 1 does not.
    const second = await check(t, { customer: "acme", values: { tokens_in: 500 } }, { ttl_seconds: 60 });
    expect(second.allowed).toBe(true);
    expect((await check(t, { customer: "acme", values: { tokens_in: 1 } })).code).toBe("LIMIT_EXCEEDED");

    const commit = await t.api("POST", `/v1/reservations/${id}/commit`, {
      event: { values: { tokens_in: 80, tokens_out: 20 } },
    });
    expect(commit.status).toBe(200);
    expect(commit.body).toMatchObject({ reservation: id, state: "committed", accepted: 1, duplicates: 0 });
    expect(typeof commit.body.event_id).toBe("string");
    expect(await meterValue(t)).toBe(100);
    expect(await customerLimit(t, "acme", "cap")).toMatchObject({ used: 100, reserved: 500, remaining: 400 });
    // The difference between estimate and actual is free again: 100 used + 500 held + 400 = 1000.
    expect((await check(t, { customer: "acme", values: { tokens_in: 400 } })).allowed).toBe(true);
    expect((await check(t, { customer: "acme", values: { tokens_in: 401 } })).code).toBe("LIMIT_EXCEEDED");
    expect((await t.api("GET", `/v1/reservations/${id}`)).body.state).toBe("committed");
    // The recorded event keeps the reserved dimensions when the commit gives none.
    const byModel = await t.api("GET", "/v1/meters/tokens/query?customer=acme&group_by=model");
    expect(byModel.body.data).toEqual([expect.objectContaining({ value: 100, groups: { model: "m1" } })]);
  });

  it("an actual above the estimate is recorded in full", async () => {
    const { t } = await setup();
    const r = await check(t, { customer: "acme", values: { tokens_in: 100 } }, { ttl_seconds: 60 });
    await t.api("POST", `/v1/reservations/${r.reservation!.id}/commit`, {
      event: { values: { tokens_in: 700 } },
    });
    expect(await customerLimit(t, "acme", "cap")).toMatchObject({ used: 700, reserved: 0, remaining: 300 });
  });

  it("without an event, commit records the estimate", async () => {
    const { t } = await setup();
    const r = await check(
      t,
      { customer: "acme", values: { tokens_in: 250, tokens_out: 50 } },
      { ttl_seconds: 60 },
    );
    const commit = await t.api("POST", `/v1/reservations/${r.reservation!.id}/commit`, {});
    expect(commit.status).toBe(200);
    expect(await meterValue(t)).toBe(300);
    expect(await customerLimit(t, "acme", "cap")).toMatchObject({ used: 300, reserved: 0 });
  });

  it("is idempotent: a repeated commit answers the same and counts the usage once", async () => {
    const { t } = await setup();
    const r = await check(t, { customer: "acme", values: { tokens_in: 100 } }, { ttl_seconds: 60 });
    const path = `/v1/reservations/${r.reservation!.id}/commit`;
    const body = { event: { values: { tokens_in: 90 } } };
    const first = await t.api("POST", path, body);
    const second = await t.api("POST", path, body);
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(second.body).toEqual(first.body);
    // Even with another body, the commit that counted stays the only one.
    const third = await t.api("POST", path, { event: { values: { tokens_in: 5 } } });
    expect(third.body).toEqual(first.body);
    expect(await meterValue(t)).toBe(90);
    expect(await customerLimit(t, "acme", "cap")).toMatchObject({ used: 90, reserved: 0 });
  });

  it("is idempotent under concurrent retries", async () => {
    const { t } = await setup();
    const r = await check(t, { customer: "acme", values: { tokens_in: 100 } }, { ttl_seconds: 60 });
    const path = `/v1/reservations/${r.reservation!.id}/commit`;
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => t.api("POST", path, { event: { values: { tokens_in: 70 } } })),
    );
    for (const a of answers) {
      expect(a.status).toBe(200);
      expect(a.body).toEqual(answers[0]!.body);
    }
    expect(await meterValue(t)).toBe(70);
    expect((await customerLimit(t, "acme", "cap")).used).toBe(70);
  });

  it("an event id given at commit is the event's idempotency key", async () => {
    const { t } = await setup();
    const r = await check(t, { customer: "acme", values: { tokens_in: 10 } }, { ttl_seconds: 60 });
    const commit = await t.api("POST", `/v1/reservations/${r.reservation!.id}/commit`, {
      event: { id: "evt_actual", values: { tokens_in: 12 } },
    });
    expect(commit.body.event_id).toBe("evt_actual");
    // The id is taken: another event under it is a conflict, and nothing more is counted.
    const other = await t.api("POST", "/v1/events", {
      events: [{ id: "evt_actual", type: "llm.completion", customer: "acme", values: { tokens_in: 99 } }],
    });
    expectError(other, 409, "CONFLICT");
    expect((await customerLimit(t, "acme", "cap")).used).toBe(12);
  });

  it("refuses a commit for another customer", async () => {
    const { t } = await setup();
    const r = await check(t, { customer: "acme", values: { tokens_in: 10 } }, { ttl_seconds: 60 });
    const err = expectError(
      await t.api("POST", `/v1/reservations/${r.reservation!.id}/commit`, { event: { customer: "bob" } }),
      400,
      "INVALID_REQUEST",
    );
    expect(err.details?.field).toBe("event.customer");
    expect(await customerLimit(t, "acme", "cap")).toMatchObject({ used: 0, reserved: 10 });
    expect((await t.api("GET", `/v1/reservations/${r.reservation!.id}`)).body.state).toBe("active");
  });
});

describe("release", () => {
  it("frees the hold, records nothing, and is idempotent", async () => {
    const { t } = await setup();
    const r = await check(t, { customer: "acme", values: { tokens_in: 600 } }, { ttl_seconds: 60 });
    expect((await check(t, { customer: "acme", values: { tokens_in: 401 } })).code).toBe("LIMIT_EXCEEDED");
    const path = `/v1/reservations/${r.reservation!.id}/release`;
    const first = await t.api("POST", path);
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ reservation: r.reservation!.id, state: "released" });
    const second = await t.api("POST", path);
    expect(second.status).toBe(200);
    expect(second.body).toEqual(first.body);
    expect(await customerLimit(t, "acme", "cap")).toMatchObject({ used: 0, reserved: 0, remaining: 1000 });
    expect(await meterValue(t)).toBe(0);
    expect((await check(t, { customer: "acme", values: { tokens_in: 1000 } })).allowed).toBe(true);
  });
});

describe("conflicts and unknown ids", () => {
  it("commit after release is 409; release after commit is 409; nothing changes", async () => {
    const { t } = await setup();
    const released = await check(t, { customer: "acme", values: { tokens_in: 10 } }, { ttl_seconds: 60 });
    await t.api("POST", `/v1/reservations/${released.reservation!.id}/release`);
    expectError(
      await t.api("POST", `/v1/reservations/${released.reservation!.id}/commit`, {}),
      409,
      "CONFLICT",
    );
    expect(await meterValue(t)).toBe(0);

    const committed = await check(t, { customer: "acme", values: { tokens_in: 20 } }, { ttl_seconds: 60 });
    await t.api("POST", `/v1/reservations/${committed.reservation!.id}/commit`, {});
    expectError(
      await t.api("POST", `/v1/reservations/${committed.reservation!.id}/release`),
      409,
      "CONFLICT",
    );
    expect((await t.api("GET", `/v1/reservations/${committed.reservation!.id}`)).body.state).toBe(
      "committed",
    );
    expect(await customerLimit(t, "acme", "cap")).toMatchObject({ used: 20, reserved: 0 });
  });

  it("an unknown reservation is 404", async () => {
    const { t } = await setup();
    expectError(await t.api("POST", "/v1/reservations/rsv_nope/commit", {}), 404, "NOT_FOUND");
    expectError(await t.api("POST", "/v1/reservations/rsv_nope/release"), 404, "NOT_FOUND");
    expectError(await t.api("GET", "/v1/reservations/rsv_nope"), 404, "NOT_FOUND");
  });

  it("another workspace's reservation is 404 and stays untouched", async () => {
    const { t } = await setup();
    const boot = await t.server.engine.bootstrap("other-ws");
    const otherKey = boot.adminKey!;
    expect(otherKey).toBeTruthy();
    const r = await check(t, { customer: "acme", values: { tokens_in: 40 } }, { ttl_seconds: 60 });
    const id = r.reservation!.id;
    const other = (method: string, path: string, body?: unknown) =>
      call(t.url, method, path, body, { key: otherKey });
    expectError(await other("POST", `/v1/reservations/${id}/commit`, {}), 404, "NOT_FOUND");
    expectError(await other("POST", `/v1/reservations/${id}/release`), 404, "NOT_FOUND");
    expectError(await other("GET", `/v1/reservations/${id}`), 404, "NOT_FOUND");
    // The other workspace sees none of acme's limits either.
    expectError(await other("GET", "/v1/customers/acme/limits"), 404, "NOT_FOUND");
    expect(await customerLimit(t, "acme", "cap")).toMatchObject({ used: 0, reserved: 40 });
    expect((await t.api("GET", `/v1/reservations/${id}`)).body.state).toBe("active");
    expect((await t.api("POST", `/v1/reservations/${id}/commit`, {})).status).toBe(200);
    expect((await customerLimit(t, "acme", "cap")).used).toBe(40);
  });

  it("a service key may check, reserve, commit and release", async () => {
    const { t } = await setup();
    const created = await t.api("POST", "/v1/api-keys", { name: "svc", role: "service" });
    expect(created.status).toBe(201);
    const svc = (method: string, path: string, body?: unknown) =>
      call(t.url, method, path, body, { key: created.body.key });
    const r = await svc("POST", "/v1/check", {
      event: { type: "llm.completion", customer: "acme", values: { tokens_in: 5 } },
      reserve: { ttl_seconds: 30 },
    });
    expect(r.status).toBe(200);
    expect((await svc("POST", `/v1/reservations/${r.body.reservation.id}/commit`, {})).status).toBe(200);
    const r2 = await svc("POST", "/v1/check", {
      event: { type: "llm.completion", customer: "acme" },
      reserve: {},
    });
    expect((await svc("POST", `/v1/reservations/${r2.body.reservation.id}/release`)).status).toBe(200);
    expectError(
      await svc("PUT", "/v1/limits/x", { meter: "tokens", amount: 1, period: "day" }),
      403,
      "FORBIDDEN",
    );
  });

  it("refuses malformed check bodies with 400", async () => {
    const { t } = await setup();
    const bad = async (body: unknown, field: RegExp) => {
      const err = expectError(await t.api("POST", "/v1/check", body), 400, "INVALID_REQUEST");
      expect(String(err.details?.field)).toMatch(field);
    };
    await bad({}, /^event$/);
    await bad({ event: { customer: "acme" } }, /^event\.type$/);
    await bad({ event: { type: "x", customer: "acme", values: { tokens_in: -1 } } }, /^event\.values/);
    await bad({ event: { type: "x", customer: "acme", values: { tokens_in: "1" } } }, /^event\.values/);
    await bad(
      { event: { type: "x", customer: "acme" }, reserve: { ttl_seconds: 0 } },
      /^reserve\.ttl_seconds$/,
    );
    expect(await customerLimit(t, "acme", "cap")).toMatchObject({ used: 0, reserved: 0 });
  });
});
