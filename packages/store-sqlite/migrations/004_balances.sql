-- Cost and balances. The price row an event was priced with (values.cost holds the cost).
ALTER TABLE events ADD COLUMN price_row TEXT;

-- Each customer's credit ledger: append-only entries (credits, debits, usage, holds, commits,
-- releases, minimum balance). The balance is derived from them, never stored. An idempotency key
-- appears once per customer; `minimum_balance` entries have none.
CREATE TABLE ledger_entries (
  seq             INTEGER PRIMARY KEY,
  ws              INTEGER NOT NULL,
  customer        TEXT NOT NULL,
  idempotency_key TEXT,
  kind            TEXT NOT NULL,
  at              INTEGER NOT NULL,
  body            TEXT NOT NULL
);
CREATE UNIQUE INDEX ledger_entries_key ON ledger_entries(ws, customer, idempotency_key);
CREATE INDEX ledger_entries_customer ON ledger_entries(ws, customer, seq);
