import type Database from "better-sqlite3";

export type WriterWrite =
  | {
      kind: "events";
      ws: number;
      /** flat [id, type, customer, ts, vals, dims] × n */
      rows: (string | number)[];
      /** The first FP_BYTES bytes of each event's fingerprint SHA-256, in event order. */
      fps: Buffer;
      /** The price row of each event (null: not priced), or absent when none is. */
      priceRows?: (string | null)[];
      /** flat [event index, customer, idempotency key, kind, at, body] × n: stored for new events only. */
      ledger?: (string | number | null)[];
    }
  | { kind: "ledger"; ws: number; rows: (string | number | null)[] }
  | {
      kind: "reservation";
      ws: number;
      id: string;
      state: string;
      expiresAt: number;
      updatedAt: number;
      body: string;
    };

export type WriterResult =
  | { ok: true; accepted: number; duplicates: number; inserted: number[] }
  | { ok: false; conflictIndex: number; id: string }
  | null;

export const FP_BYTES: number;

export function createWriter(
  db: Database.Database,
): (writes: WriterWrite[]) => { results: WriterResult[]; commitSeq: number };
