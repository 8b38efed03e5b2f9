-- Reservations (holds of check+reserve) and their outcome, for exact restarts and idempotent commits.
CREATE TABLE reservations (
  ws         INTEGER NOT NULL,
  id         TEXT NOT NULL,
  state      TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  body       TEXT NOT NULL,
  PRIMARY KEY (ws, id)
) WITHOUT ROWID;
CREATE INDEX reservations_active ON reservations(state, expires_at);
