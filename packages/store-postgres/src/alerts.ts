import type {
  Alert,
  DeliveryAttempt,
  DeliveryRecord,
  DeliveryState,
  DueDelivery,
  NewDelivery,
  WebhookRecord,
} from "@tollgate/core";
import type pg from "pg";

/**
 * Alerts, webhook endpoints and the delivery outbox (migration 002), as the embedded store keeps them
 * (its alerts.ts). Writes are rare; each is its own transaction on a pooled connection.
 */
export class PostgresAlerts {
  constructor(
    private readonly pool: pg.Pool,
    private readonly tx: <T>(fn: (c: pg.PoolClient) => Promise<T>) => Promise<T>,
  ) {}

  insertAlert(ws: number, alert: Alert, deliveries: NewDelivery[], now: number): Promise<boolean> {
    return this.tx(async (c) => {
      const r = await c.query(
        `INSERT INTO alerts (ws, id, type, customer, created_at, data) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (ws, id) DO NOTHING`,
        [ws, alert.id, alert.type, alert.customer, alert.createdAt, JSON.stringify(alert.data)],
      );
      if (r.rowCount !== 1) return false;
      for (const d of deliveries) {
        await c.query(
          `INSERT INTO webhook_deliveries (ws, id, webhook_id, alert_id, event_type, state, attempts,
             round_start_attempts, round_started_at, next_attempt_at, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, 'pending', 0, 0, $6, $6, $6, $6)`,
          [ws, d.id, d.webhookId, alert.id, alert.type, now],
        );
      }
      return true;
    });
  }

  async listAlerts(
    ws: number,
    q: { type?: string; customer?: string; before?: number; limit: number },
  ): Promise<{ seq: number; alert: Alert }[]> {
    const where = ["ws = $1"];
    const params: unknown[] = [ws];
    if (q.type !== undefined) {
      params.push(q.type);
      where.push(`type = $${params.length}`);
    }
    if (q.customer !== undefined) {
      params.push(q.customer);
      where.push(`customer = $${params.length}`);
    }
    if (q.before !== undefined) {
      params.push(q.before);
      where.push(`seq < $${params.length}`);
    }
    params.push(q.limit);
    const { rows } = await this.pool.query<AlertRow>(
      `SELECT * FROM alerts WHERE ${where.join(" AND ")} ORDER BY seq DESC LIMIT $${params.length}`,
      params,
    );
    return rows.map((r) => ({ seq: r.seq, alert: toAlert(r) }));
  }

  async putWebhook(ws: number, w: WebhookRecord): Promise<void> {
    await this.pool.query(
      `INSERT INTO webhooks (ws, id, url, events, description, secret, previous_secret,
         previous_secret_until, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
       ON CONFLICT (ws, id) DO UPDATE SET url = excluded.url, events = excluded.events,
         description = excluded.description, secret = excluded.secret,
         previous_secret = excluded.previous_secret, previous_secret_until = excluded.previous_secret_until,
         updated_at = excluded.updated_at`,
      [
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
      ],
    );
  }

  async getWebhook(ws: number, id: string): Promise<WebhookRecord | undefined> {
    const { rows } = await this.pool.query<WebhookRow>("SELECT * FROM webhooks WHERE ws = $1 AND id = $2", [
      ws,
      id,
    ]);
    return rows[0] && toWebhook(rows[0]);
  }

  async listWebhooks(ws: number): Promise<WebhookRecord[]> {
    const { rows } = await this.pool.query<WebhookRow>(
      "SELECT * FROM webhooks WHERE ws = $1 ORDER BY created_at, id",
      [ws],
    );
    return rows.map(toWebhook);
  }

  deleteWebhook(ws: number, id: string, now: number): Promise<boolean> {
    return this.tx(async (c) => {
      const r = await c.query("DELETE FROM webhooks WHERE ws = $1 AND id = $2", [ws, id]);
      if (r.rowCount === 0) return false;
      await c.query(
        `UPDATE webhook_deliveries SET state = 'cancelled', next_attempt_at = NULL, updated_at = $1
         WHERE ws = $2 AND webhook_id = $3 AND state = 'pending'`,
        [now, ws, id],
      );
      return true;
    });
  }

  async dueDeliveries(now: number, limit: number): Promise<DueDelivery[]> {
    const { rows } = await this.pool.query<DueRow>(
      `SELECT d.*, w.id AS workspace_id, h.url, h.secret, h.previous_secret, h.previous_secret_until,
         a.type AS alert_type, a.customer AS alert_customer, a.created_at AS alert_created_at, a.data AS alert_data
       FROM webhook_deliveries d
       JOIN webhooks h ON h.ws = d.ws AND h.id = d.webhook_id
       JOIN alerts a ON a.ws = d.ws AND a.id = d.alert_id
       JOIN workspaces w ON w.seq = d.ws
       WHERE d.state = 'pending' AND d.next_attempt_at <= $1
       ORDER BY d.next_attempt_at, d.seq LIMIT $2`,
      [now, limit],
    );
    return rows.map((r) => ({
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
    ws: number,
    deliveryId: string,
    a: DeliveryAttempt,
    next: { state: DeliveryState; nextAttemptAt: number | null },
  ): Promise<void> {
    return this.tx(async (c) => {
      await c.query(
        `INSERT INTO webhook_attempts (ws, delivery_id, attempt, at, status, latency_ms, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (ws, delivery_id, attempt) DO UPDATE SET at = excluded.at, status = excluded.status,
           latency_ms = excluded.latency_ms, error = excluded.error`,
        [ws, deliveryId, a.attempt, a.at, a.status, a.latencyMs, a.error],
      );
      // Only a pending delivery moves: one cancelled (endpoint deleted) meanwhile stays cancelled.
      await c.query(
        `UPDATE webhook_deliveries SET state = $1, attempts = greatest(attempts, $2), next_attempt_at = $3,
           last_status = $4, last_latency_ms = $5, last_error = $6,
           delivered_at = CASE WHEN $1 = 'delivered' THEN $7 ELSE delivered_at END, updated_at = $7
         WHERE ws = $8 AND id = $9 AND state = 'pending'`,
        [next.state, a.attempt, next.nextAttemptAt, a.status, a.latencyMs, a.error, a.at, ws, deliveryId],
      );
    });
  }

  async listDeliveries(
    ws: number,
    webhookId: string,
    q: { state?: DeliveryState; before?: number; limit: number },
  ): Promise<{ seq: number; delivery: DeliveryRecord; attempts: DeliveryAttempt[] }[]> {
    const where = ["ws = $1", "webhook_id = $2"];
    const params: unknown[] = [ws, webhookId];
    if (q.state !== undefined) {
      params.push(q.state);
      where.push(`state = $${params.length}`);
    }
    if (q.before !== undefined) {
      params.push(q.before);
      where.push(`seq < $${params.length}`);
    }
    params.push(q.limit);
    const { rows } = await this.pool.query<DeliveryRow>(
      `SELECT * FROM webhook_deliveries WHERE ${where.join(" AND ")} ORDER BY seq DESC LIMIT $${params.length}`,
      params,
    );
    const out: { seq: number; delivery: DeliveryRecord; attempts: DeliveryAttempt[] }[] = [];
    for (const r of rows) {
      const attempts = await this.pool.query<AttemptRow>(
        "SELECT * FROM webhook_attempts WHERE ws = $1 AND delivery_id = $2 ORDER BY attempt",
        [ws, r.id],
      );
      out.push({
        seq: r.seq,
        delivery: toDelivery(r),
        attempts: attempts.rows.map((a) => ({
          attempt: a.attempt,
          at: a.at,
          status: a.status,
          latencyMs: a.latency_ms,
          error: a.error,
        })),
      });
    }
    return out;
  }

  async requeueDelivery(
    ws: number,
    webhookId: string,
    deliveryId: string,
    now: number,
  ): Promise<DeliveryRecord | undefined> {
    const { rows } = await this.pool.query<DeliveryRow>(
      `UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $1, round_start_attempts = attempts,
         round_started_at = $1, updated_at = $1
       WHERE ws = $2 AND webhook_id = $3 AND id = $4 RETURNING *`,
      [now, ws, webhookId, deliveryId],
    );
    return rows[0] && toDelivery(rows[0]);
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
