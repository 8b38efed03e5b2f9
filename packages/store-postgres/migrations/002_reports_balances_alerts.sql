-- Rollups, retention, cost and balances, alerts and webhooks: the embedded store's migrations 003-005.

-- Sums two JSON objects of value sums (the rollups' `vals`), exactly (numeric).
CREATE FUNCTION merge_sums(a jsonb, b jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce(jsonb_object_agg(k, s), '{}'::jsonb)
  FROM (SELECT k, sum(v::numeric) AS s
        FROM (SELECT key AS k, value AS v FROM jsonb_each_text(a)
              UNION ALL SELECT key, value FROM jsonb_each_text(b)) x
        GROUP BY k) y
$$;

-- One row per (hour, customer, event type, dimensions without `run`), maintained by the group-commit
-- transaction that inserts the events. See docs/reports.md.
CREATE TABLE rollup_hour (
  ws         bigint NOT NULL,
  bucket     bigint NOT NULL,
  customer   text COLLATE "C" NOT NULL,
  type       text NOT NULL,
  dims       text COLLATE "C" NOT NULL,
  events     bigint NOT NULL,
  tokens_in  bigint NOT NULL,
  tokens_out bigint NOT NULL,
  steps      bigint NOT NULL,
  cost       bigint NOT NULL,
  vals       jsonb NOT NULL,
  PRIMARY KEY (ws, bucket, customer, type, dims)
);

CREATE TABLE rollup_day (
  ws         bigint NOT NULL,
  bucket     bigint NOT NULL,
  customer   text COLLATE "C" NOT NULL,
  type       text NOT NULL,
  dims       text COLLATE "C" NOT NULL,
  events     bigint NOT NULL,
  tokens_in  bigint NOT NULL,
  tokens_out bigint NOT NULL,
  steps      bigint NOT NULL,
  cost       bigint NOT NULL,
  PRIMARY KEY (ws, bucket, customer, type, dims)
);

CREATE TABLE workflow_runs (
  ws         bigint NOT NULL,
  workflow   text NOT NULL,
  run        text COLLATE "C" NOT NULL,
  customer   text NOT NULL,
  events     bigint NOT NULL,
  steps      bigint NOT NULL,
  tokens_in  bigint NOT NULL,
  tokens_out bigint NOT NULL,
  cost       bigint NOT NULL,
  first_ts   bigint NOT NULL,
  last_ts    bigint NOT NULL,
  PRIMARY KEY (ws, workflow, run)
);
CREATE INDEX workflow_runs_started ON workflow_runs(ws, workflow, first_ts, run);

CREATE TABLE purge_horizons (
  ws       bigint NOT NULL,
  customer text NOT NULL,
  before   bigint NOT NULL,
  PRIMARY KEY (ws, customer)
);

-- Cost: the price row an event was priced with.
ALTER TABLE events ADD COLUMN price_row text;
-- The commit that stored the event (commit_seq.seq of its transaction): pages of a replay read the
-- events of commits up to one sequence number (Store.pageEvents).
ALTER TABLE events ADD COLUMN commit_seq bigint NOT NULL DEFAULT 0;

-- Each customer's credit ledger (append-only). NULL keys (minimum_balance) are distinct.
CREATE TABLE ledger_entries (
  seq             bigserial PRIMARY KEY,
  ws              bigint NOT NULL,
  customer        text NOT NULL,
  idempotency_key text,
  kind            text NOT NULL,
  at              bigint NOT NULL,
  body            text NOT NULL
);
CREATE UNIQUE INDEX ledger_entries_key ON ledger_entries(ws, customer, idempotency_key);
CREATE INDEX ledger_entries_customer ON ledger_entries(ws, customer, seq);

-- Alerts and webhooks: an alert and its deliveries (the outbox) in one transaction.
CREATE TABLE alerts (
  seq        bigserial PRIMARY KEY,
  ws         bigint NOT NULL,
  id         text NOT NULL,
  type       text NOT NULL,
  customer   text,
  created_at bigint NOT NULL,
  data       text NOT NULL
);
CREATE UNIQUE INDEX alerts_id ON alerts(ws, id);
CREATE INDEX alerts_type ON alerts(ws, type, seq);
CREATE INDEX alerts_customer ON alerts(ws, customer, seq);

CREATE TABLE webhooks (
  ws                    bigint NOT NULL,
  id                    text COLLATE "C" NOT NULL,
  url                   text NOT NULL,
  events                text NOT NULL,
  description           text,
  secret                text NOT NULL,
  previous_secret       text,
  previous_secret_until bigint,
  created_at            bigint NOT NULL,
  updated_at            bigint NOT NULL,
  PRIMARY KEY (ws, id)
);

CREATE TABLE webhook_deliveries (
  seq                  bigserial PRIMARY KEY,
  ws                   bigint NOT NULL,
  id                   text NOT NULL,
  webhook_id           text NOT NULL,
  alert_id             text NOT NULL,
  event_type           text NOT NULL,
  state                text NOT NULL,
  attempts             integer NOT NULL DEFAULT 0,
  round_start_attempts integer NOT NULL DEFAULT 0,
  round_started_at     bigint NOT NULL,
  next_attempt_at      bigint,
  last_status          integer,
  last_latency_ms      integer,
  last_error           text,
  delivered_at         bigint,
  created_at           bigint NOT NULL,
  updated_at           bigint NOT NULL
);
CREATE UNIQUE INDEX webhook_deliveries_id ON webhook_deliveries(ws, id);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries(ws, webhook_id, seq);

CREATE TABLE webhook_attempts (
  ws          bigint NOT NULL,
  delivery_id text NOT NULL,
  attempt     integer NOT NULL,
  at          bigint NOT NULL,
  status      integer,
  latency_ms  integer NOT NULL,
  error       text,
  PRIMARY KEY (ws, delivery_id, attempt)
);
