import type Database from "better-sqlite3";

export const HOUR_MS: number;
export const DAY_MS: number;
export function mergeSums(a: string, b: string): string;
export function registerRollupFunctions(db: Database.Database): void;
export interface RollupStatements {
  hour: Database.Statement;
  day: Database.Statement;
  run: Database.Statement;
}
export function prepareRollupStatements(db: Database.Database): RollupStatements;
export class RollupBatch {
  add(ws: number, type: string, customer: string, ts: number, valsJson: string, dimsJson: string): void;
  clear(): void;
  readonly size: number;
  write(stmts: {
    hour: Database.Statement;
    day: Database.Statement | null;
    run: Database.Statement | null;
  }): void;
}
