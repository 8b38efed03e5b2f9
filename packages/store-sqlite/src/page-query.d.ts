import type { EventPageScan } from "@tollgate/core";

export function pageQuery(
  ws: number,
  asOfSeq: number,
  scan: EventPageScan,
  limit: number,
): { sql: string; params: unknown[] };
