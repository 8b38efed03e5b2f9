import type { EventPage } from "@tollgate/core";

export interface EncodedPage {
  n: number;
  asOfSeq: number;
}

export function createPageEncoder(tableMax?: number): {
  encode(rows: unknown[][], asOfSeq: number): { message: EncodedPage; transfer: ArrayBuffer[] };
};

export function createPageDecoder(): {
  decode(message: EncodedPage): EventPage;
};
