import type { EventPageScan } from "@tollgate/core";

export const EVENT_COLUMNS: string;

export function eventFilter(
  ws: number,
  f: { customer?: string; customers?: string[]; from?: number; to?: number; types?: string[] },
): { where: string[]; params: unknown[] };

export function pageQuery(
  ws: number,
  asOfSeq: number,
  scan: EventPageScan,
  limit: number,
): { sql: string; params: unknown[] };
