import type Database from "better-sqlite3";

export type WriterWrite =
  | { kind: "events"; ws: number; rows: (string | number)[] }
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

export function createWriter(
  db: Database.Database,
): (writes: WriterWrite[]) => { results: WriterResult[]; commitSeq: number };
