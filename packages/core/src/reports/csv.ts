/**
 * CSV per RFC 4180: fields with a comma, a double quote, CR or LF are quoted, a quote is doubled;
 * lines end with CRLF. A field that would start with =, +, - or @ is written as is (these are
 * numbers and ids, not formulas for a spreadsheet to run: callers that open exports in spreadsheets
 * should import them as text).
 */
export function csvField(value: string | number | bigint | null | undefined): string {
  if (value === null || value === undefined) return "";
  const s = typeof value === "string" ? value : value.toString();
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export function csvLine(fields: (string | number | bigint | null | undefined)[]): string {
  return `${fields.map(csvField).join(",")}\r\n`;
}

/** Parses RFC 4180 text back into rows (for tests and the CLI's progress): quoted fields may hold CRLF. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        continue;
      }
      field += c;
      i++;
      continue;
    }
    if (c === '"' && field === "") {
      quoted = true;
      i++;
    } else if (c === ",") {
      row.push(field);
      field = "";
      i++;
    } else if (c === "\r" && text[i + 1] === "\n") {
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
      i += 2;
    } else if (c === "\n") {
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
      i++;
    } else {
      field += c;
      i++;
    }
  }
  if (field !== "" || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}
