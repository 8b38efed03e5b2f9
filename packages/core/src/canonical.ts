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

/** Canonical JSON of a flat object of strings or numbers (event values and dimensions): keys sorted. */
export function canonicalFlat(obj: Record<string, string | number> | undefined): string {
  if (obj === undefined) return "{}";
  const keys = Object.keys(obj);
  if (keys.length === 0) return "{}";
  if (keys.length > 1) keys.sort();
  let out = "{";
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const v = obj[k];
    out += `${i === 0 ? "" : ","}${JSON.stringify(k)}:${typeof v === "number" ? String(v) : JSON.stringify(v)}`;
  }
  return `${out}}`;
}
