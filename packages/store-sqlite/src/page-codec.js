// Pages of events as the reader thread (reader-worker.js) sends them to the main thread: columns in
// typed arrays (transferred, not copied) and repeated strings — types, customers, price rows,
// dimensions, the key sets of values — sent once and then named by index. The main thread builds
// the events from them without parsing JSON or copying strings it has already seen.

/** An index at or above INLINE names the page's own `inline` list (a table is full, or odd values). */
const INLINE = 0x80000000;
/** Entries each table may hold: memory stays bounded when every event has its own dimensions. */
const TABLE_MAX = 50_000;

/**
 * The reader thread's side: interns what repeats and lays a page of raw rows out in columns.
 * @param {number} tableMax entries per table (tests make it small)
 */
export function createPageEncoder(tableMax = TABLE_MAX) {
  const strings = new Map([[null, 0]]);
  const dims = new Map();
  const shapes = new Map();
  /** The key set of the last row encoded under a shape, and that shape. */
  let lastKeys = null;
  let lastShape = 0;
  return {
    /**
     * @param {unknown[][]} rows raw rows: [seq, id, type, customer, ts, vals, dims, price_row]
     * @param {number} asOfSeq
     */
    encode(rows, asOfSeq) {
      const n = rows.length;
      const seq = new Float64Array(n);
      const ts = new Float64Array(n);
      const cols = new Uint32Array(n * 5); // type, customer, dims, price row, shape
      const idEnds = new Uint32Array(n);
      let vals = new Float64Array(n * 4);
      let nVals = 0;
      const newStrings = [];
      const newDims = [];
      const newShapes = [];
      const inline = [];
      let ids = "";
      const str = (s) => {
        let i = strings.get(s);
        if (i !== undefined) return i;
        if (strings.size >= tableMax) return INLINE + inline.push(s) - 1;
        i = strings.size;
        strings.set(s, i);
        newStrings.push(s);
        return i;
      };
      for (let r = 0; r < n; r++) {
        const row = rows[r];
        seq[r] = row[0];
        ids += row[1];
        idEnds[r] = ids.length;
        ts[r] = row[4];
        const c = r * 5;
        cols[c] = str(row[2]);
        cols[c + 1] = str(row[3]);
        const dj = row[6];
        let d = dims.get(dj);
        if (d === undefined) {
          if (dims.size >= tableMax) d = INLINE + inline.push(dj) - 1;
          else {
            d = dims.size;
            dims.set(dj, d);
            newDims.push(dj);
          }
        }
        cols[c + 2] = d;
        cols[c + 3] = str(row[7]);
        // Values: numbers under a key set sent once; anything else as its JSON text.
        const vj = row[5];
        const v = JSON.parse(vj);
        const keys = Object.keys(v);
        let numbers = true;
        for (const k of keys) if (typeof v[k] !== "number" || k === "__proto__") numbers = false;
        let s;
        if (numbers && sameKeys(keys, lastKeys)) s = lastShape;
        else if (numbers) {
          const key = JSON.stringify(keys);
          s = shapes.get(key);
          if (s === undefined && shapes.size < tableMax) {
            s = shapes.size;
            shapes.set(key, s);
            newShapes.push(keys);
          }
        }
        if (s === undefined) {
          cols[c + 4] = INLINE + inline.push(vj) - 1;
          continue;
        }
        cols[c + 4] = s;
        // Rows of a page mostly share their key set: the next row compares its keys to these.
        lastKeys = keys;
        lastShape = s;
        if (nVals + keys.length > vals.length) {
          const grown = new Float64Array(Math.max(vals.length * 2, nVals + keys.length));
          grown.set(vals);
          vals = grown;
        }
        for (const k of keys) vals[nVals++] = v[k];
      }
      const message = {
        n,
        asOfSeq,
        seq,
        ts,
        cols,
        idEnds,
        ids,
        vals: vals.slice(0, nVals),
        newStrings,
        newDims,
        newShapes,
        inline,
      };
      return { message, transfer: [seq.buffer, ts.buffer, cols.buffer, idEnds.buffer, message.vals.buffer] };
    },
  };
}

/** Whether two key lists are equal, element by element (b may be null). */
function sameKeys(a, b) {
  if (b === null || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The main thread's side: the same tables, filled from each page in order. */
export function createPageDecoder() {
  const strings = [null];
  const dims = [];
  const shapes = [];
  return {
    /** @returns {import("@tollgate/core").EventPage} */
    decode(m) {
      for (const s of m.newStrings) strings.push(s);
      // Shared by every event with the same dimensions: frozen, so that no one can change them all.
      for (const d of m.newDims) dims.push(Object.freeze(JSON.parse(d)));
      for (const s of m.newShapes) shapes.push(s);
      const { n, seq, ts, cols, idEnds, ids, vals, inline } = m;
      const str = (i) => (i >= INLINE ? inline[i - INLINE] : strings[i]);
      const events = new Array(n);
      let j = 0;
      let idStart = 0;
      for (let r = 0; r < n; r++) {
        const c = r * 5;
        const d = cols[c + 2];
        const s = cols[c + 4];
        let values;
        if (s >= INLINE) values = JSON.parse(inline[s - INLINE]);
        else {
          values = {};
          for (const k of shapes[s]) values[k] = vals[j++];
        }
        const event = {
          id: ids.slice(idStart, idEnds[r]),
          type: str(cols[c]),
          customer: str(cols[c + 1]),
          timestamp: ts[r],
          values,
          dimensions: d >= INLINE ? JSON.parse(inline[d - INLINE]) : dims[d],
        };
        idStart = idEnds[r];
        const priceRow = str(cols[c + 3]);
        if (priceRow !== null) event.priceRow = priceRow;
        events[r] = { event, seq: seq[r] };
      }
      return { events, asOfSeq: m.asOfSeq };
    },
  };
}
