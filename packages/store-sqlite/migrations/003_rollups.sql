-- Rollups: usage pre-aggregated on ingest, in the same transaction as the event insert, so reports and
-- quota loads never scan raw events. Raw events stay the source of truth: `tollgate rebuild-rollups`
-- recomputes these tables from them (for the hours that have not been purged).
--
-- One row per (hour, customer, event type, dimensions). `dims` is the canonical JSON of the event's
-- dimensions without `run` (one value per agent run would make nearly every row unique; runs have
-- their own table). `vals` holds the sum of every value name as JSON; the four columns a report reads
-- are repeated as integers so that SQL can sum them.
CREATE TABLE rollup_hour (
  ws         INTEGER NOT NULL,
  bucket     INTEGER NOT NULL,
  customer   TEXT NOT NULL,
  type       TEXT NOT NULL,
  dims       TEXT NOT NULL,
  events     INTEGER NOT NULL,
  tokens_in  INTEGER NOT NULL,
  tokens_out INTEGER NOT NULL,
  steps      INTEGER NOT NULL,
  cost       INTEGER NOT NULL,
  vals       TEXT NOT NULL,
  PRIMARY KEY (ws, bucket, customer, type, dims)
) WITHOUT ROWID;

-- The same rows per UTC day, for reports (days, weeks and months read up to 24 times fewer rows).
-- Only the report columns: quota loading reads the hour rows.
CREATE TABLE rollup_day (
  ws         INTEGER NOT NULL,
  bucket     INTEGER NOT NULL,
  customer   TEXT NOT NULL,
  type       TEXT NOT NULL,
  dims       TEXT NOT NULL,
  events     INTEGER NOT NULL,
  tokens_in  INTEGER NOT NULL,
  tokens_out INTEGER NOT NULL,
  steps      INTEGER NOT NULL,
  cost       INTEGER NOT NULL,
  PRIMARY KEY (ws, bucket, customer, type, dims)
) WITHOUT ROWID;

-- One row per workflow run (events with both `workflow` and `run` dimensions).
CREATE TABLE workflow_runs (
  ws         INTEGER NOT NULL,
  workflow   TEXT NOT NULL,
  run        TEXT NOT NULL,
  customer   TEXT NOT NULL,
  events     INTEGER NOT NULL,
  steps      INTEGER NOT NULL,
  tokens_in  INTEGER NOT NULL,
  tokens_out INTEGER NOT NULL,
  cost       INTEGER NOT NULL,
  first_ts   INTEGER NOT NULL,
  last_ts    INTEGER NOT NULL,
  PRIMARY KEY (ws, workflow, run)
) WITHOUT ROWID;
CREATE INDEX workflow_runs_started ON workflow_runs(ws, workflow, first_ts, run);

-- Retention: raw events of `customer` before `before` (a whole hour) were deleted; their usage lives
-- on in the rollups only.
CREATE TABLE purge_horizons (
  ws       INTEGER NOT NULL,
  customer TEXT NOT NULL,
  before   INTEGER NOT NULL,
  PRIMARY KEY (ws, customer)
) WITHOUT ROWID;
