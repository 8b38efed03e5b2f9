-- Tollgate embedded store, schema version 1.
CREATE TABLE workspaces (
  seq        INTEGER PRIMARY KEY,
  id         TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
);

CREATE TABLE api_keys (
  id           TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces(id),
  name         TEXT NOT NULL,
  role         TEXT NOT NULL,
  customer_id  TEXT,
  prefix       TEXT NOT NULL,
  hash         TEXT NOT NULL UNIQUE,
  created_at   INTEGER NOT NULL,
  last_used_at INTEGER
);
CREATE INDEX api_keys_workspace ON api_keys(workspace_id, customer_id);

-- Definitions and entities (customers, plans, meters, limits, ...) as JSON documents.
CREATE TABLE records (
  ws         INTEGER NOT NULL,
  kind       TEXT NOT NULL,
  id         TEXT NOT NULL,
  body       TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (ws, kind, id)
) WITHOUT ROWID;

-- Raw usage events: the source of truth. `fp` is a hash of the body as sent, for idempotency.
CREATE TABLE events (
  seq      INTEGER PRIMARY KEY,
  ws       INTEGER NOT NULL,
  id       TEXT NOT NULL,
  type     TEXT NOT NULL,
  customer TEXT NOT NULL,
  ts       INTEGER NOT NULL,
  vals     TEXT NOT NULL,
  dims     TEXT NOT NULL,
  fp       BLOB NOT NULL
);
CREATE UNIQUE INDEX events_id ON events(ws, id);
CREATE INDEX events_customer_ts ON events(ws, customer, ts);
CREATE INDEX events_ts ON events(ws, ts);
