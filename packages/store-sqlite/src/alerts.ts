import type {
  Alert,
  DeliveryAttempt,
  DeliveryRecord,
  DeliveryState,
  DueDelivery,
  NewDelivery,
  WebhookRecord,
} from "@tollgate/core";
import type Database from "better-sqlite3";

/**
 * Alerts, webhook endpoints and the delivery outbox (migration 005), on the main thread's
 * connection. Writes are rare (an alert per level and window, an attempt per delivery), so they take
 * the write lock directly (IMMEDIATE) rather than going through the group-commit writer thread.
 */
export class SqliteAlerts {
  private readonly stmt;

  constructor(
    private readonly db: Database.Database,
    private readonly wsOf: (workspaceId: string) => number | undefined,
  ) {
    this.stmt = {
      alertInsert: db.prepare(
        `INSERT INTO alerts (ws, id, type, customer, created_at, data) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (ws, id) DO NOTHING`,
      ),
      deliveryInsert: db.prepare(
        `INSERT INTO webhook_deliveries (ws, id, webhook_id, alert_id, event_type, state, attempts,
           round_start_attempts, round_started_at, next_attempt_at, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, 'pending', 0, 0, ?, ?, ?, ?)`,
      ),
      webhookPut: db.prepare(
        `INSERT INTO webhooks (ws, id, url, events, description, secret, previous_secret,
           previous_secret_until, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (ws, id) DO UPDATE SET url = excluded.url, events = excluded.events,
           description = excluded.description, secret = excluded.secret,
           previous_secret = excluded.previous_secret, previous_secret_until = excluded.previous_secret_until,
           updated_at = excluded.updated_at`,
      ),
      webhookGet: db.prepare("SELECT * FROM webhooks WHERE ws = ? AND id = ?"),
      webhookList: db.prepare("SELECT * FROM webhooks WHERE ws = ? ORDER BY created_at, id"),
      webhookDelete: db.prepare("DELETE FROM webhooks WHERE ws = ? AND id = ?"),
      cancelPending: db.prepare(
        `UPDATE webhook_deliveries SET state = 'cancelled', next_attempt_at = NULL, updated_at = ?
         WHERE ws = ? AND webhook_id = ? AND state = 'pending'`,
      ),
      due: db.prepare(
        `SELECT d.*, w.id AS workspace_id, h.url, h.secret, h.previous_secret, h.previous_secret_until,
           a.type AS alert_type, a.customer AS alert_customer, a.created_at AS alert_created_at, a.data AS alert_data
         FROM webhook_deliveries d
         JOIN webhooks h ON h.ws = d.ws AND h.id = d.webhook_id
         JOIN alerts a ON a.ws = d.ws AND a.id = d.alert_id
         JOIN workspaces w ON w.seq = d.ws
         WHERE d.state = 'pending' AND d.next_attempt_at <= ?
         ORDER BY d.next_attempt_at, d.seq LIMIT ?`,
      ),
      deliveryGet: db.prepare("SELECT * FROM webhook_deliveries WHERE ws = ? AND id = ?"),
      attemptInsert: db.prepare(
        `INSERT OR REPLACE INTO webhook_attempts (ws, delivery_id, attempt, at, status, latency_ms, error)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      deliveryUpdate: db.prepare(
        `UPDATE webhook_deliveries SET state = ?, attempts = max(attempts, ?), next_attempt_at = ?,
           last_status = ?, last_latency_ms = ?, last_error = ?,
           delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END, updated_at = ?
         WHERE ws = ? AND id = ? AND state = 'pending'`,
      ),
      attemptsOf: db.prepare(
        "SELECT * FROM webhook_attempts WHERE ws = ? AND delivery_id = ? ORDER BY attempt",
      ),
      requeue: db.prepare(
        `UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = ?, round_start_attempts = attempts,
           round_started_at = ?, updated_at = ?
         WHERE ws = ? AND webhook_id = ? AND id = ?`,
      ),
    };
  }

  insertAlert(workspaceId: string, alert: Alert, deliveries: NewDelivery[], now: number): boolean {
    const ws = this.wsOf(workspaceId);
    if (ws === undefined) throw new Error(`unknown workspace ${workspaceId}`);
    return this.db
      .transaction(() => {
        const inserted =
          this.stmt.alertInsert.run(
            ws,
            alert.id,
            alert.type,
            alert.customer,
            alert.createdAt,
            JSON.stringify(alert.data),
          ).changes === 1;
        if (!inserted) return false;
        for (const d of deliveries) {
          this.stmt.deliveryInsert.run(ws, d.id, d.webhookId, alert.id, alert.type, now, now, now, now);
        }
        return true;
      })
      .immediate();
  }

  listAlerts(
    workspaceId: string,
    q: { type?: string; customer?: string; before?: number; limit: number },
  ): { seq: number; alert: Alert }[] {
    const ws = this.wsOf(workspaceId);
    if (ws === undefined) return [];
    const where = ["ws = ?"];
    const params: unknown[] = [ws];
    if (q.type !== undefined) {
      where.push("type = ?");
      params.push(q.type);
    }
    if (q.customer !== undefined) {
      where.push("customer = ?");
      params.push(q.customer);
    }
    if (q.before !== undefined) {
      where.push("seq < ?");
      params.push(q.before);
    }
    params.push(q.limit);
    const rows = this.db
      .prepare(`SELECT * FROM alerts WHERE ${where.join(" AND ")} ORDER BY seq DESC LIMIT ?`)
      .all(...params) as AlertRow[];
    return rows.map((r) => ({ seq: r.seq, alert: toAlert(r) }));
  }

  putWebhook(workspaceId: string, w: WebhookRecord): void {
    const ws = this.wsOf(workspaceId);
    if (ws === undefined) throw new Error(`unknown workspace ${workspaceId}`);
    this.stmt.webhookPut.run(
      ws,
      w.id,
      w.url,
      JSON.stringify(w.events),
      w.description,
      w.secret,
      w.previousSecret,
      w.previousSecretUntil,
      w.createdAt,
      w.updatedAt,
    );
  }

  getWebhook(workspaceId: string, id: string): WebhookRecord | undefined {
    const ws = this.wsOf(workspaceId);
    if (ws === undefined) return undefined;
    const row = this.stmt.webhookGet.get(ws, id) as WebhookRow | undefined;
    return row && toWebhook(row);
  }

  listWebhooks(workspaceId: string): WebhookRecord[] {
    const ws = this.wsOf(workspaceId);
    if (ws === undefined) return [];
    return (this.stmt.webhookList.all(ws) as WebhookRow[]).map(toWebhook);
  }

  deleteWebhook(workspaceId: string, id: string, now: number): boolean {
    const ws = this.wsOf(workspaceId);
    if (ws === undefined) return false;
    return this.db
      .transaction(() => {
        if (this.stmt.webhookDelete.run(ws, id).changes === 0) return false;
        this.stmt.cancelPending.run(now, ws, id);
        return true;
      })
      .immediate();
  }

  dueDeliveries(now: number, limit: number): DueDelivery[] {
    return (this.stmt.due.all(now, limit) as DueRow[]).map((r) => ({
      workspaceId: r.workspace_id,
      delivery: toDelivery(r),
      alert: {
        id: r.alert_id,
        type: r.alert_type as Alert["type"],
        customer: r.alert_customer,
        createdAt: r.alert_created_at,
        data: JSON.parse(r.alert_data),
      },
      url: r.url,
      secrets:
        r.previous_secret !== null && r.previous_secret_until !== null && r.previous_secret_until > now
          ? [r.secret, r.previous_secret]
          : [r.secret],
    }));
  }

  saveAttempt(
    workspaceId: string,
    deliveryId: string,
    a: DeliveryAttempt,
    next: { state: DeliveryState; nextAttemptAt: number | null },
  ): void {
    const ws = this.wsOf(workspaceId);
    if (ws === undefined) throw new Error(`unknown workspace ${workspaceId}`);
    this.db
      .transaction(() => {
        this.stmt.attemptInsert.run(ws, deliveryId, a.attempt, a.at, a.status, a.latencyMs, a.error);
        // Only a pending delivery moves: one cancelled (endpoint deleted) meanwhile stays cancelled.
        this.stmt.deliveryUpdate.run(
          next.state,
          a.attempt,
          next.nextAttemptAt,
          a.status,
          a.latencyMs,
          a.error,
          next.state,
          a.at,
          a.at,
          ws,
          deliveryId,
        );
      })
      .immediate();
  }

  listDeliveries(
    workspaceId: string,
    webhookId: string,
    q: { state?: DeliveryState; before?: number; limit: number },
  ): { seq: number; delivery: DeliveryRecord; attempts: DeliveryAttempt[] }[] {
    const ws = this.wsOf(workspaceId);
    if (ws === undefined) return [];
    const where = ["ws = ?", "webhook_id = ?"];
    const params: unknown[] = [ws, webhookId];
    if (q.state !== undefined) {
      where.push("state = ?");
      params.push(q.state);
    }
    if (q.before !== undefined) {
      where.push("seq < ?");
      params.push(q.before);
    }
    params.push(q.limit);
    const rows = this.db
      .prepare(`SELECT * FROM webhook_deliveries WHERE ${where.join(" AND ")} ORDER BY seq DESC LIMIT ?`)
      .all(...params) as DeliveryRow[];
    return rows.map((r) => ({
      seq: r.seq,
      delivery: toDelivery(r),
      attempts: (this.stmt.attemptsOf.all(ws, r.id) as AttemptRow[]).map((a) => ({
        attempt: a.attempt,
        at: a.at,
        status: a.status,
        latencyMs: a.latency_ms,
        error: a.error,
      })),
    }));
  }

  requeueDelivery(
    workspaceId: string,
    webhookId: string,
    deliveryId: string,
    now: number,
  ): DeliveryRecord | undefined {
    const ws = this.wsOf(workspaceId);
    if (ws === undefined) return undefined;
    return this.db
      .transaction(() => {
        if (this.stmt.requeue.run(now, now, now, ws, webhookId, deliveryId).changes === 0) return undefined;
        return toDelivery(this.stmt.deliveryGet.get(ws, deliveryId) as DeliveryRow);
      })
      .immediate();
  }
}

interface AlertRow {
  seq: number;
  id: string;
  type: string;
  customer: string | null;
  created_at: number;
  data: string;
}
interface WebhookRow {
  id: string;
  url: string;
  events: string;
  description: string | null;
  secret: string;
  previous_secret: string | null;
  previous_secret_until: number | null;
  created_at: number;
  updated_at: number;
}
interface DeliveryRow {
  seq: number;
  id: string;
  webhook_id: string;
  alert_id: string;
  event_type: string;
  state: DeliveryState;
  attempts: number;
  round_start_attempts: number;
  round_started_at: number;
  next_attempt_at: number | null;
  last_status: number | null;
  last_latency_ms: number | null;
  last_error: string | null;
  delivered_at: number | null;
  created_at: number;
  updated_at: number;
}
interface DueRow extends DeliveryRow {
  workspace_id: string;
  url: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_until: number | null;
  alert_type: string;
  alert_customer: string | null;
  alert_created_at: number;
  alert_data: string;
}
interface AttemptRow {
  attempt: number;
  at: number;
  status: number | null;
  latency_ms: number;
  error: string | null;
}

const toAlert = (r: AlertRow): Alert => ({
  id: r.id,
  type: r.type as Alert["type"],
  customer: r.customer,
  createdAt: r.created_at,
  data: JSON.parse(r.data),
});

const toWebhook = (r: WebhookRow): WebhookRecord => ({
  id: r.id,
  url: r.url,
  events: JSON.parse(r.events),
  description: r.description,
  secret: r.secret,
  previousSecret: r.previous_secret,
  previousSecretUntil: r.previous_secret_until,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const toDelivery = (r: DeliveryRow): DeliveryRecord => ({
  id: r.id,
  webhookId: r.webhook_id,
  alertId: r.alert_id,
  eventType: r.event_type,
  state: r.state,
  attempts: r.attempts,
  roundStartAttempts: r.round_start_attempts,
  roundStartedAt: r.round_started_at,
  nextAttemptAt: r.next_attempt_at,
  lastStatus: r.last_status,
  lastLatencyMs: r.last_latency_ms,
  lastError: r.last_error,
  deliveredAt: r.delivered_at,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});
