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

const INSERTION_SORT_MAX = 16;

/** Canonical JSON of a flat object of strings or numbers (event values and dimensions): keys sorted. */
export function canonicalFlat(obj: Record<string, string | number> | undefined): string {
  if (obj === undefined) return "{}";
  const keys = Object.keys(obj);
  if (keys.length === 0) return "{}";
  // Events have a few keys, usually in order already, or one out of place (the `cost` that pricing
  // appends): an insertion sort, one pass when they are in order, costs less than the sort() call.
  // `<` compares as sort() does (UTF-16 code units); keys are distinct, so the order is the same.
  if (keys.length > INSERTION_SORT_MAX) keys.sort();
  else {
    for (let i = 1; i < keys.length; i++) {
      const k = keys[i]!;
      let j = i - 1;
      while (j >= 0 && k < keys[j]!) {
        keys[j + 1] = keys[j]!;
        j--;
      }
      keys[j + 1] = k;
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
