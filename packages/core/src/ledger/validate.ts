import { invalid, type TollgateError } from "../errors.js";
import { type LedgerEntry, ledgerBounds } from "./types.js";

const isSafeInt = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v);

function id(entry: Record<string, unknown>, field: string): TollgateError | undefined {
  const v = entry[field];
  if (typeof v !== "string" || v.length === 0 || v.length > ledgerBounds.idLengthMax) {
    return invalid(`${field} must be a string of 1 to ${ledgerBounds.idLengthMax} characters`, { field });
  }
  return undefined;
}

function amount(entry: Record<string, unknown>, field: string, min: 0 | 1): TollgateError | undefined {
  const v = entry[field];
  if (!isSafeInt(v) || v < min) {
    return invalid(`${field} must be an integer from ${min} to 2^53 - 1`, { field });
  }
  return undefined;
}

function instant(
  entry: Record<string, unknown>,
  field: string,
  optional: boolean,
): TollgateError | undefined {
  const v = entry[field];
  if (optional && (v === undefined || v === null)) return undefined;
  if (!isSafeInt(v)) return invalid(`${field} must be an integer epoch-ms instant`, { field });
  return undefined;
}

function description(entry: Record<string, unknown>): TollgateError | undefined {
  const v = entry.description;
  if (v === undefined) return undefined;
  if (typeof v !== "string" || v.length > ledgerBounds.descriptionLengthMax) {
    const max = ledgerBounds.descriptionLengthMax;
    return invalid(`description must be a string of at most ${max} characters`, { field: "description" });
  }
  return undefined;
}

/**
 * The first problem with an entry's shape (types and ranges), or undefined. Problems that depend on
 * the ledger (an expiresAt already passed, a taken id) are found when the entry is applied.
 */
export function entryProblem(entry: LedgerEntry): TollgateError | undefined {
  const e = entry as unknown as Record<string, unknown>;
  if (typeof e !== "object" || e === null) return invalid("entry must be an object", { field: "" });
  const at = instant(e, "at", false);
  if (at) return at;
  switch (entry.kind) {
    case "credit": {
      const p = e.priority;
      if (
        p !== undefined &&
        (!isSafeInt(p) || p < ledgerBounds.priorityMin || p > ledgerBounds.priorityMax)
      ) {
        const { priorityMin: lo, priorityMax: hi } = ledgerBounds;
        return invalid(`priority must be an integer from ${lo} to ${hi}`, { field: "priority" });
      }
      return (
        id(e, "idempotencyKey") ??
        amount(e, "amount", 1) ??
        instant(e, "expiresAt", true) ??
        (e.grantId === undefined ? undefined : id(e, "grantId")) ??
        description(e)
      );
    }
    case "debit":
      return id(e, "idempotencyKey") ?? amount(e, "amount", 0) ?? description(e);
    case "usage":
      return (
        id(e, "idempotencyKey") ??
        id(e, "rule") ??
        amount(e, "units", 0) ??
        amount(e, "creditsPerUnit", 1) ??
        amount(e, "unit", 1) ??
        description(e)
      );
    case "hold":
      return (
        id(e, "idempotencyKey") ?? id(e, "holdId") ?? amount(e, "amount", 0) ?? instant(e, "expiresAt", false)
      );
    case "commit":
      return id(e, "idempotencyKey") ?? id(e, "holdId") ?? amount(e, "actualAmount", 0) ?? description(e);
    case "release":
      return id(e, "idempotencyKey") ?? id(e, "holdId");
    case "minimum_balance": {
      const v = e.minimumBalance;
      if (!isSafeInt(v)) {
        return invalid("minimumBalance must be an integer from -(2^53 - 1) to 2^53 - 1", {
          field: "minimumBalance",
        });
      }
      return undefined;
    }
    default:
      return invalid(`unknown entry kind ${JSON.stringify(e.kind)}`, { field: "kind" });
  }
}

/**
 * What makes two entries with the same idempotency key "the same request": everything that decides
 * the effect on money. Not `at` (a retry comes later), not descriptions, and not a hold's `expiresAt`
 * (a retried reservation computes a new TTL end; the first one's stands).
 */
export function fingerprint(entry: Exclude<LedgerEntry, { kind: "minimum_balance" }>): string {
  switch (entry.kind) {
    case "credit":
      return JSON.stringify([
        "credit",
        entry.amount,
        entry.expiresAt ?? null,
        entry.priority ?? ledgerBounds.priorityDefault,
        entry.grantId ?? entry.idempotencyKey,
      ]);
    case "debit":
      return JSON.stringify(["debit", entry.amount]);
    case "usage":
      return JSON.stringify(["usage", entry.rule, entry.units, entry.creditsPerUnit, entry.unit]);
    case "hold":
      return JSON.stringify(["hold", entry.holdId, entry.amount]);
    case "commit":
      return JSON.stringify(["commit", entry.holdId, entry.actualAmount]);
    case "release":
      return JSON.stringify(["release", entry.holdId]);
  }
}
