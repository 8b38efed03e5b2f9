// RESP encoding of the check script's call, into a shared slab of memory.

const SLAB_BYTES = 64 * 1024;

/**
 * Encodes one request at a time (a RESP array of bulk strings) into a slab shared by the requests
 * of a connection: each request is a view of the slab that is never written again (the socket may
 * still hold it until the tick's write); a full slab is left to the garbage collector and a new one
 * taken. A request then costs one Buffer view instead of several strings per argument (ioredis
 * builds "$" + length + "\r\n" + arg + "\r\n" for each), and the socket writes bytes it need not
 * encode.
 */
export class RespWriter {
  private slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
  private start = 0;
  private off = 0;

  /** Starts a request of `count` bulk strings. */
  begin(count: number): void {
    this.start = this.off;
    this.ensure(16);
    this.slab[this.off++] = 0x2a; // "*"
    this.digits(count);
  }

  /** The request so far (a view of the slab that is not written again). */
  end(): Buffer {
    return this.slab.subarray(this.start, this.off);
  }

  /** A bulk string already encoded (see encodeBulk). */
  bytes(encoded: Uint8Array): void {
    this.ensure(encoded.length);
    this.slab.set(encoded, this.off);
    this.off += encoded.length;
  }

  string(s: string): void {
    const n = s.length;
    if (n > 64) {
      this.utf8(s);
      return;
    }
    // Short strings (states, numbers, fields): copied here when they are ASCII.
    this.ensure(n + 16);
    const at = this.off;
    const slab = this.slab;
    slab[this.off++] = 0x24; // "$"
    this.digits(n);
    let o = this.off;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) {
        this.off = at;
        this.utf8(s);
        return;
      }
      slab[o++] = c;
    }
    slab[o++] = 0x0d;
    slab[o++] = 0x0a;
    this.off = o;
  }

  number(n: number): void {
    this.string(String(n));
  }

  private utf8(s: string): void {
    const bytes = Buffer.byteLength(s);
    this.ensure(bytes + 16);
    this.slab[this.off++] = 0x24; // "$"
    this.digits(bytes);
    this.off += this.slab.write(s, this.off, bytes, "utf8");
    this.slab[this.off++] = 0x0d;
    this.slab[this.off++] = 0x0a;
  }

  /** `n` in decimal and CRLF (n a non-negative integer). */
  private digits(n: number): void {
    const slab = this.slab;
    let o = this.off;
    if (n < 10) slab[o++] = 0x30 + n;
    else {
      const s = String(n);
      for (let i = 0; i < s.length; i++) slab[o++] = s.charCodeAt(i);
    }
    slab[o++] = 0x0d;
    slab[o++] = 0x0a;
    this.off = o;
  }

  /** Room for `n` more bytes: a request that would not fit moves to a new slab. */
  private ensure(n: number): void {
    if (this.off + n <= this.slab.length) return;
    const used = this.off - this.start;
    const next = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, 2 * (used + n)));
    this.slab.copy(next, 0, this.start, this.off);
    this.slab = next;
    this.start = 0;
    this.off = used;
  }
}

/** A bulk string's encoding, for strings sent often (keys). */
export function encodeBulk(s: string): Buffer {
  return Buffer.from(`$${Buffer.byteLength(s)}\r\n${s}\r\n`);
}
