import type { Alert } from "@tollgate/core";
import { SqliteStore } from "@tollgate/store-sqlite";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

/** The SQLite side of the alerts port, directly (what a PostgreSQL store must match). */
let store: SqliteStore;
beforeEach(async () => {
  store = new SqliteStore({ path: ":memory:" });
  await store.ensureWorkspace("ws", 0);
  await store.ensureWorkspace("other", 0);
});
afterEach(() => store.close());

const alert = (
  id: string,
  type: Alert["type"] = "limit.warning",
  customer: string | null = "acme",
): Alert => ({
  id,
  type,
  customer,
  createdAt: 1_000,
  data: { n: id },
});
const hook = (id: string, events: string[] = ["limit.warning"]) => ({
  id,
  url: `https://example.com/${id}`,
  events,
  description: null,
  secret: `whsec_${id}`,
  previousSecret: null,
  previousSecretUntil: null,
  createdAt: 0,
  updatedAt: 0,
});

describe("SQLite alerts port", () => {
  it("an alert and its deliveries are written once, together; a second insert of the id writes nothing", async () => {
    await store.putWebhook("ws", hook("wh_1"));
    expect(await store.insertAlert("ws", alert("alt_1"), [{ id: "dlv_1", webhookId: "wh_1" }], 5_000)).toBe(
      true,
    );
    expect(await store.insertAlert("ws", alert("alt_1"), [{ id: "dlv_2", webhookId: "wh_1" }], 6_000)).toBe(
      false,
    );
    const rows = await store.listDeliveries("ws", "wh_1", { limit: 10 });
    expect(rows.map((r) => r.delivery.id)).toEqual(["dlv_1"]);
    expect(rows[0]!.delivery).toMatchObject({
      state: "pending",
      attempts: 0,
      nextAttemptAt: 5_000,
      roundStartedAt: 5_000,
    });
    // Same alert id in another workspace is another alert.
    expect(await store.insertAlert("other", alert("alt_1"), [], 5_000)).toBe(true);
    expect((await store.listAlerts("ws", { limit: 10 })).map((r) => r.alert)).toEqual([alert("alt_1")]);
  });

  it("a failed delivery insert rolls the alert back (one transaction)", async () => {
    await store.putWebhook("ws", hook("wh_1"));
    await store.insertAlert("ws", alert("alt_0"), [{ id: "dlv_x", webhookId: "wh_1" }], 0);
    // dlv_x exists: the unique index refuses it, and alt_1 must not stay behind without its outbox row.
    await expect(
      store.insertAlert("ws", alert("alt_1"), [{ id: "dlv_x", webhookId: "wh_1" }], 0),
    ).rejects.toThrow();
    expect((await store.listAlerts("ws", { limit: 10 })).map((r) => r.alert.id)).toEqual(["alt_0"]);
    expect(await store.insertAlert("ws", alert("alt_1"), [{ id: "dlv_y", webhookId: "wh_1" }], 0)).toBe(true);
  });

  it("due deliveries: earliest first, across workspaces, only pending and due, with alert and secrets", async () => {
    await store.putWebhook("ws", hook("wh_1"));
    await store.putWebhook("other", {
      ...hook("wh_2"),
      previousSecret: "whsec_old",
      previousSecretUntil: 10_000,
    });
    await store.insertAlert("ws", alert("alt_1"), [{ id: "dlv_1", webhookId: "wh_1" }], 3_000);
    await store.insertAlert("other", alert("alt_2"), [{ id: "dlv_2", webhookId: "wh_2" }], 2_000);
    await store.insertAlert("ws", alert("alt_3"), [{ id: "dlv_3", webhookId: "wh_1" }], 9_000);
    const due = await store.dueDeliveries(5_000, 10);
    expect(due.map((d) => [d.workspaceId, d.delivery.id, d.alert.id])).toEqual([
      ["other", "dlv_2", "alt_2"],
      ["ws", "dlv_1", "alt_1"],
    ]);
    expect(due[0]!.secrets).toEqual(["whsec_wh_2", "whsec_old"]);
    expect(due[1]!.secrets).toEqual(["whsec_wh_1"]);
    expect((await store.dueDeliveries(20_000, 10)).find((d) => d.delivery.id === "dlv_2")!.secrets).toEqual([
      "whsec_wh_2",
    ]);
    expect(await store.dueDeliveries(5_000, 1)).toHaveLength(1);

    await store.saveAttempt(
      "ws",
      "dlv_1",
      { attempt: 1, at: 5_000, status: 503, latencyMs: 12, error: null },
      {
        state: "pending",
        nextAttemptAt: 20_000,
      },
    );
    expect((await store.dueDeliveries(5_000, 10)).map((d) => d.delivery.id)).toEqual(["dlv_2"]);
    await store.saveAttempt(
      "ws",
      "dlv_1",
      { attempt: 2, at: 20_000, status: 204, latencyMs: 3, error: null },
      {
        state: "delivered",
        nextAttemptAt: null,
      },
    );
    const [row] = (await store.listDeliveries("ws", "wh_1", { state: "delivered", limit: 10 })).filter(
      (r) => r.delivery.id === "dlv_1",
    );
    expect(row!.delivery).toMatchObject({
      state: "delivered",
      attempts: 2,
      lastStatus: 204,
      deliveredAt: 20_000,
    });
    expect(row!.attempts.map((a) => [a.attempt, a.status, a.latencyMs])).toEqual([
      [1, 503, 12],
      [2, 204, 3],
    ]);
  });

  it("deleting an endpoint cancels its pending deliveries, and a late attempt outcome does not revive them", async () => {
    await store.putWebhook("ws", hook("wh_1"));
    await store.insertAlert("ws", alert("alt_1"), [{ id: "dlv_1", webhookId: "wh_1" }], 0);
    expect(await store.deleteWebhook("ws", "wh_1", 100)).toBe(true);
    expect(await store.deleteWebhook("ws", "wh_1", 100)).toBe(false);
    await store.saveAttempt(
      "ws",
      "dlv_1",
      { attempt: 1, at: 50, status: 500, latencyMs: 1, error: null },
      {
        state: "pending",
        nextAttemptAt: 1_000,
      },
    );
    const state = store.db.prepare("SELECT state FROM webhook_deliveries WHERE id = 'dlv_1'").pluck().get();
    expect(state).toBe("cancelled");
    expect(await store.dueDeliveries(10_000, 10)).toEqual([]);
  });

  it("requeue starts a new round; lists page newest first by cursor", async () => {
    await store.putWebhook("ws", hook("wh_1", ["limit.warning", "limit.exceeded"]));
    for (let i = 1; i <= 5; i++) {
      await store.insertAlert(
        "ws",
        alert(`alt_${i}`, i % 2 ? "limit.warning" : "limit.exceeded"),
        [{ id: `dlv_${i}`, webhookId: "wh_1" }],
        i,
      );
    }
    await store.saveAttempt(
      "ws",
      "dlv_1",
      { attempt: 1, at: 10, status: 500, latencyMs: 1, error: null },
      {
        state: "failed",
        nextAttemptAt: null,
      },
    );
    expect(await store.requeueDelivery("ws", "wh_2", "dlv_1", 99)).toBeUndefined();
    expect(await store.requeueDelivery("other", "wh_1", "dlv_1", 99)).toBeUndefined();
    expect(await store.requeueDelivery("ws", "wh_1", "dlv_1", 99)).toMatchObject({
      state: "pending",
      attempts: 1,
      roundStartAttempts: 1,
      roundStartedAt: 99,
      nextAttemptAt: 99,
    });
    const first = await store.listAlerts("ws", { limit: 2 });
    expect(first.map((r) => r.alert.id)).toEqual(["alt_5", "alt_4"]);
    const next = await store.listAlerts("ws", { limit: 10, before: first[1]!.seq });
    expect(next.map((r) => r.alert.id)).toEqual(["alt_3", "alt_2", "alt_1"]);
    expect(
      (await store.listAlerts("ws", { type: "limit.exceeded", limit: 10 })).map((r) => r.alert.id),
    ).toEqual(["alt_4", "alt_2"]);
    const d = await store.listDeliveries("ws", "wh_1", { limit: 2 });
    expect(d.map((r) => r.delivery.id)).toEqual(["dlv_5", "dlv_4"]);
    expect(
      (await store.listDeliveries("ws", "wh_1", { limit: 10, before: d[1]!.seq })).map((r) => r.delivery.id),
    ).toEqual(["dlv_3", "dlv_2", "dlv_1"]);
  });
});
