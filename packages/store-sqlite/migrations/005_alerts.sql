-- Alerts and webhooks (issue #6). An alert and its deliveries (the outbox) are written in one
-- transaction; the delivery worker polls the pending deliveries that are due.

-- Alerts: `id` is deterministic (limit, subject, group, window, level...), so raising the same
-- alert twice stores it once (INSERT OR IGNORE). `seq` orders the list and makes its cursor.
CREATE TABLE alerts (
  seq        INTEGER PRIMARY KEY,
  ws         INTEGER NOT NULL,
  id         TEXT NOT NULL,
  type       TEXT NOT NULL,
  customer   TEXT,
  created_at INTEGER NOT NULL,
  data       TEXT NOT NULL
);
CREATE UNIQUE INDEX alerts_id ON alerts(ws, id);
CREATE INDEX alerts_type ON alerts(ws, type, seq);
CREATE INDEX alerts_customer ON alerts(ws, customer, seq);

-- Webhook endpoints. `secret` (whsec_...) is kept in plaintext: every delivery is signed with it
-- (an HMAC needs the key itself). `previous_secret` keeps signing until `previous_secret_until`
-- after a rotation.
CREATE TABLE webhooks (
  ws                    INTEGER NOT NULL,
  id                    TEXT NOT NULL,
  url                   TEXT NOT NULL,
  events                TEXT NOT NULL,
  description           TEXT,
  secret                TEXT NOT NULL,
  previous_secret       TEXT,
  previous_secret_until INTEGER,
  created_at            INTEGER NOT NULL,
  updated_at            INTEGER NOT NULL,
  PRIMARY KEY (ws, id)
) WITHOUT ROWID;

-- The outbox: one row per alert and endpoint. `state`: pending | delivered | failed | cancelled.
CREATE TABLE webhook_deliveries (
  seq                  INTEGER PRIMARY KEY,
  ws                   INTEGER NOT NULL,
  id                   TEXT NOT NULL,
  webhook_id           TEXT NOT NULL,
  alert_id             TEXT NOT NULL,
  event_type           TEXT NOT NULL,
  state                TEXT NOT NULL,
  attempts             INTEGER NOT NULL DEFAULT 0,
  round_start_attempts INTEGER NOT NULL DEFAULT 0,
  round_started_at     INTEGER NOT NULL,
  next_attempt_at      INTEGER,
  last_status          INTEGER,
  last_latency_ms      INTEGER,
  last_error           TEXT,
  delivered_at         INTEGER,
  created_at           INTEGER NOT NULL,
  updated_at           INTEGER NOT NULL
);
CREATE UNIQUE INDEX webhook_deliveries_id ON webhook_deliveries(ws, id);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries(ws, webhook_id, seq);

-- Every attempt of a delivery: status code (null without a response), latency, error.
CREATE TABLE webhook_attempts (
  ws          INTEGER NOT NULL,
  delivery_id TEXT NOT NULL,
  attempt     INTEGER NOT NULL,
  at          INTEGER NOT NULL,
  status      INTEGER,
  latency_ms  INTEGER NOT NULL,
  error       TEXT,
  PRIMARY KEY (ws, delivery_id, attempt)
) WITHOUT ROWID;
