-- Tollgate PostgreSQL store, schema version 1 (the same tables as the embedded store's 001 and 002).
-- Ids compare byte by byte (COLLATE "C"), as SQLite's TEXT does, so pages come in the same order.
CREATE TABLE workspaces (
  seq        bigserial PRIMARY KEY,
  id         text COLLATE "C" NOT NULL UNIQUE,
  created_at bigint NOT NULL
);

CREATE TABLE api_keys (
  id           text COLLATE "C" PRIMARY KEY,
  workspace_id text COLLATE "C" NOT NULL REFERENCES workspaces(id),
  name         text NOT NULL,
  role         text NOT NULL,
  customer_id  text COLLATE "C",
  prefix       text NOT NULL,
  hash         text NOT NULL UNIQUE,
  created_at   bigint NOT NULL,
  last_used_at bigint
);
CREATE INDEX api_keys_workspace ON api_keys(workspace_id, customer_id);

-- Definitions and entities as JSON text (not jsonb: the body comes back with its key order).
CREATE TABLE records (
  ws         bigint NOT NULL,
  kind       text NOT NULL,
  id         text COLLATE "C" NOT NULL,
  body       text NOT NULL,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  PRIMARY KEY (ws, kind, id)
);

-- Raw usage events: the source of truth. `fp` is a hash of the body as sent, for idempotency.
CREATE TABLE events (
  seq      bigserial PRIMARY KEY,
  ws       bigint NOT NULL,
  id       text COLLATE "C" NOT NULL,
  type     text NOT NULL,
  customer text COLLATE "C" NOT NULL,
  ts       bigint NOT NULL,
  vals     text NOT NULL,
  dims     text NOT NULL,
  fp       text NOT NULL
);
CREATE UNIQUE INDEX events_id ON events(ws, id);
CREATE INDEX events_customer_ts ON events(ws, customer, ts);
CREATE INDEX events_ts ON events(ws, ts);

-- The commit sequence: every transaction that appends events bumps this one row last, so commits
-- are ordered by it across processes, and a snapshot that reads it knows exactly which commits it holds.
CREATE TABLE commit_seq (
  one boolean PRIMARY KEY DEFAULT true CHECK (one),
  seq bigint NOT NULL
);
INSERT INTO commit_seq (one, seq) VALUES (true, 0);

CREATE TABLE reservations (
  ws         bigint NOT NULL,
  id         text COLLATE "C" NOT NULL,
  state      text NOT NULL,
  expires_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  body       text NOT NULL,
  PRIMARY KEY (ws, id)
);
CREATE INDEX reservations_active ON reservations(state, expires_at);
