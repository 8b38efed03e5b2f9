/** One server-sent event as received: its raw text (to forward unchanged) and its fields. */
export interface SseEvent {
  raw: string;
  event: string | null;
  data: string;
}

/**
 * Splits a byte stream into whole SSE events (the proxy forwards event by event, so it holds at most
 * one partial event, never the stream).
 */
export class SseParser {
  private readonly decoder = new TextDecoder();
  private buffer = "";

  push(chunk: Uint8Array): SseEvent[] {
    this.buffer += this.decoder.decode(chunk, { stream: true });
    return this.take();
  }

  /** What is left when the upstream ends (an event without its final blank line). */
  end(): SseEvent[] {
    this.buffer += this.decoder.decode();
    const events = this.take();
    if (this.buffer.trim() !== "") events.push(parse(`${this.buffer}\n\n`));
    this.buffer = "";
    return events;
  }

  private take(): SseEvent[] {
    const events: SseEvent[] = [];
    for (;;) {
      const m = /\r\n\r\n|\n\n|\r\r/.exec(this.buffer);
      if (!m) break;
      const end = m.index + m[0].length;
      events.push(parse(this.buffer.slice(0, end)));
      this.buffer = this.buffer.slice(end);
    }
    return events;
  }
}

function parse(raw: string): SseEvent {
  let event: string | null = null;
  const data: string[] = [];
  for (const line of raw.split(/\r\n|\n|\r/)) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  return { raw, event, data: data.join("\n") };
}
