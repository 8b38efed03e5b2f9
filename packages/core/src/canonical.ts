/** JSON with object keys sorted at every depth: equal values give equal strings. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(",")}}`;
}

/**
 * Keys as JSON with the colon (`"tokens_in":`), kept for the few names events use over and over:
 * canonicalFlat runs two or three times for every recorded event. Bounded: cleared when full.
 */
const keyJson = new Map<string, string>();
const KEY_JSON_MAX = 4096;

/** Canonical JSON of a flat object of strings or numbers (event values and dimensions): keys sorted. */
export function canonicalFlat(obj: Record<string, string | number> | undefined): string {
  if (obj === undefined) return "{}";
  const keys = Object.keys(obj);
  if (keys.length === 0) return "{}";
  // Usually already in order (clients send the same keys the same way): sorted only if not, which
  // skips the sort call's own cost per object. `<` compares as sort() does (UTF-16 code units).
  for (let i = 1; i < keys.length; i++) {
    if (keys[i]! < keys[i - 1]!) {
      keys.sort();
      break;
    }
  }
  let out = "{";
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    let kj = keyJson.get(k);
    if (kj === undefined) {
      if (keyJson.size >= KEY_JSON_MAX) keyJson.clear();
      kj = `${JSON.stringify(k)}:`;
      keyJson.set(k, kj);
    }
    const v = obj[k];
    if (i > 0) out += ",";
    out += kj;
    out += typeof v === "number" ? String(v) : JSON.stringify(v);
  }
  return `${out}}`;
}
