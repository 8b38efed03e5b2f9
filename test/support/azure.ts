import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** One request of the Azure LLM inference trace 2023 (../shared/data/azure-llm-2023). */
export interface TraceRow {
  /** Epoch ms (the file's TIMESTAMP read as UTC; sub-millisecond digits dropped). */
  timestamp: number;
  /** The file's TIMESTAMP as RFC 3339 UTC, with its microseconds. */
  iso: string;
  contextTokens: number;
  generatedTokens: number;
}

export const TRACE_DIR = fileURLToPath(new URL("../../../shared/data/azure-llm-2023/", import.meta.url));

/** Reads conv.csv or code.csv. */
export function readTrace(file: "conv" | "code"): TraceRow[] {
  const text = readFileSync(`${TRACE_DIR}${file}.csv`, "utf8");
  const rows: TraceRow[] = [];
  for (const line of text.split("\n").slice(1)) {
    if (line.trim() === "") continue;
    const [ts, ctx, gen] = line.split(",");
    // "2023-11-16 18:15:46.6805900" → "2023-11-16T18:15:46.680590Z"
    const [date, time] = ts!.trim().split(" ");
    const [hms, frac = "0"] = time!.split(".");
    const iso = `${date}T${hms}.${frac.padEnd(6, "0").slice(0, 6)}Z`;
    rows.push({
      timestamp: Date.parse(`${date}T${hms}.${frac.padEnd(3, "0").slice(0, 3)}Z`),
      iso,
      contextTokens: Number(ctx),
      generatedTokens: Number(gen),
    });
  }
  return rows;
}
