import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A fake OpenAI + Anthropic API on loopback: answers in the shapes the real APIs use (recorded from
 * their documentation), plain and SSE, with the usage it is told to report. Output text is " tok"
 * repeated: one o200k token per " tok", so the tokenizer and the reported usage agree.
 */
export interface Scenario {
  /** Output tokens the response reports (and streams). @default 12 */
  outputTokens?: number;
  /** prompt / input tokens reported. @default 30 */
  inputTokens?: number;
  /** cached input tokens (OpenAI: part of prompt_tokens; Anthropic: cache_read_input_tokens). */
  cachedTokens?: number;
  /** Anthropic cache_creation_input_tokens. */
  cacheWriteTokens?: number;
  reasoningTokens?: number;
  /** Tokens per streamed chunk. @default 3 */
  chunkTokens?: number;
  /** Pause between streamed chunks. @default 0 */
  delayMs?: number;
  /** Answer this status with the provider's error shape instead. */
  failStatus?: number;
  /** Fail after this many streamed chunks (the connection is destroyed). */
  breakAfterChunks?: number;
  model?: string;
}

export interface RecordedRequest {
  path: string;
  headers: IncomingMessage["headers"];
  // biome-ignore lint/suspicious/noExplicitAny: request bodies are checked field by field
  body: any;
}

export interface FakeUpstream {
  url: string;
  requests: RecordedRequest[];
  scenario: Scenario;
  /** Chunks written by the last streamed response. */
  chunksSent: number;
  /** Resolves when the last streamed response ended (completed or broken off by the client). */
  streamDone: Promise<void>;
  close(): Promise<void>;
}

const text = (tokens: number) => " tok".repeat(tokens);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startFakeUpstream(initial: Scenario = {}): Promise<FakeUpstream> {
  const state: FakeUpstream = {
    url: "",
    requests: [],
    scenario: initial,
    chunksSent: 0,
    streamDone: Promise.resolve(),
    close: async () => {},
  };
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body: unknown = null;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      body = null;
    }
    const path = (req.url ?? "").split("?")[0]!;
    state.requests.push({ path, headers: req.headers, body });
    const s = { ...state.scenario };
    // biome-ignore lint/suspicious/noExplicitAny: see above
    const b = body as any;
    const anthropic = path === "/v1/messages";
    if (s.failStatus) {
      res.writeHead(s.failStatus, { "content-type": "application/json" });
      res.end(
        JSON.stringify(
          anthropic
            ? { type: "error", error: { type: "api_error", message: "upstream exploded" } }
            : { error: { message: "upstream exploded", type: "server_error", code: null, param: null } },
        ),
      );
      return;
    }
    const model = s.model ?? b?.model ?? "gpt-4o-mini";
    const input = s.inputTokens ?? 30;
    const output = s.outputTokens ?? 12;
    if (path === "/v1/embeddings") return embeddings(res, b, model, input);
    if (!b?.stream) {
      res.writeHead(200, { "content-type": "application/json" });
      if (path === "/v1/chat/completions") res.end(JSON.stringify(chatCompletion(model, s, input, output)));
      else if (path === "/v1/responses")
        res.end(JSON.stringify(response(model, s, input, output, "completed")));
      else if (anthropic) res.end(JSON.stringify(anthropicMessage(model, s, input, output)));
      else res.writeHead(404).end();
      return;
    }
    let done!: () => void;
    state.streamDone = new Promise((r) => {
      done = r;
    });
    state.chunksSent = 0;
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    let closed = false;
    res.on("close", () => {
      closed = true;
    });
    const send = async (event: string | null, data: unknown) => {
      if (closed) return false;
      res.write(
        `${event ? `event: ${event}\n` : ""}data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`,
      );
      if (s.delayMs) await sleep(s.delayMs);
      return !closed;
    };
    const per = s.chunkTokens ?? 3;
    try {
      if (path === "/v1/chat/completions") {
        const base = { id: "chatcmpl-fake", object: "chat.completion.chunk", created: 1_763_900_000, model };
        await send(null, {
          ...base,
          choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }],
        });
        for (let sent = 0; sent < output; sent += per) {
          if (s.breakAfterChunks !== undefined && state.chunksSent >= s.breakAfterChunks) {
            // Let what was written reach the client, then drop the connection mid-response.
            await new Promise((r) => res.write("", () => r(null)));
            await sleep(20);
            res.destroy();
            return;
          }
          const n = Math.min(per, output - sent);
          if (
            !(await send(null, {
              ...base,
              choices: [{ index: 0, delta: { content: text(n) }, finish_reason: null }],
            }))
          )
            return;
          state.chunksSent++;
        }
        await send(null, { ...base, choices: [{ index: 0, delta: {}, finish_reason: "stop" }] });
        if (b.stream_options?.include_usage)
          await send(null, { ...base, choices: [], usage: chatUsage(s, input, output) });
        await send(null, "[DONE]");
      } else if (path === "/v1/responses") {
        let seq = 0;
        const r = response(model, s, input, output, "in_progress");
        await send("response.created", {
          type: "response.created",
          response: { ...r, usage: null, output: [] },
          sequence_number: seq++,
        });
        for (let sent = 0; sent < output; sent += per) {
          const n = Math.min(per, output - sent);
          const ok = await send("response.output_text.delta", {
            type: "response.output_text.delta",
            item_id: "msg_fake",
            output_index: 0,
            content_index: 0,
            delta: text(n),
            logprobs: [],
            sequence_number: seq++,
          });
          if (!ok) return;
          state.chunksSent++;
        }
        await send("response.completed", {
          type: "response.completed",
          response: response(model, s, input, output, "completed"),
          sequence_number: seq++,
        });
      } else if (anthropic) {
        const m = anthropicMessage(model, s, input, output);
        await send("message_start", {
          type: "message_start",
          message: { ...m, content: [], stop_reason: null, usage: { ...m.usage, output_tokens: 1 } },
        });
        await send("content_block_start", {
          type: "content_block_start",
          index: 0,
          content_block: { type: "text", text: "" },
        });
        await send("ping", { type: "ping" });
        for (let sent = 0; sent < output; sent += per) {
          const n = Math.min(per, output - sent);
          const ok = await send("content_block_delta", {
            type: "content_block_delta",
            index: 0,
            delta: { type: "text_delta", text: text(n) },
          });
          if (!ok) return;
          state.chunksSent++;
        }
        await send("content_block_stop", { type: "content_block_stop", index: 0 });
        await send("message_delta", {
          type: "message_delta",
          delta: { stop_reason: "end_turn", stop_sequence: null },
          usage: { output_tokens: output },
        });
        await send("message_stop", { type: "message_stop" });
      }
      res.end();
    } finally {
      done();
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return state;
}

function chatUsage(s: Scenario, input: number, output: number) {
  return {
    prompt_tokens: input,
    completion_tokens: output,
    total_tokens: input + output,
    prompt_tokens_details: { cached_tokens: s.cachedTokens ?? 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: s.reasoningTokens ?? 0, audio_tokens: 0 },
  };
}

function chatCompletion(model: string, s: Scenario, input: number, output: number) {
  return {
    id: "chatcmpl-fake",
    object: "chat.completion",
    created: 1_763_900_000,
    model,
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: text(output), refusal: null },
        logprobs: null,
        finish_reason: "stop",
      },
    ],
    usage: chatUsage(s, input, output),
    system_fingerprint: "fp_fake",
  };
}

function response(model: string, s: Scenario, input: number, output: number, status: string) {
  return {
    id: "resp_fake",
    object: "response",
    created_at: 1_763_900_000,
    status,
    model,
    output: [
      {
        type: "message",
        id: "msg_fake",
        status: "completed",
        role: "assistant",
        content: [{ type: "output_text", text: text(output), annotations: [] }],
      },
    ],
    usage: {
      input_tokens: input,
      input_tokens_details: { cached_tokens: s.cachedTokens ?? 0 },
      output_tokens: output,
      output_tokens_details: { reasoning_tokens: s.reasoningTokens ?? 0 },
      total_tokens: input + output,
    },
  };
}

function anthropicMessage(model: string, s: Scenario, input: number, output: number) {
  return {
    id: "msg_fake",
    type: "message",
    role: "assistant",
    model,
    content: [{ type: "text", text: text(output) }],
    stop_reason: "end_turn",
    stop_sequence: null,
    usage: {
      input_tokens: input,
      cache_creation_input_tokens: s.cacheWriteTokens ?? 0,
      cache_read_input_tokens: s.cachedTokens ?? 0,
      output_tokens: output,
    },
  };
}

// biome-ignore lint/suspicious/noExplicitAny: request body
function embeddings(res: ServerResponse, b: any, model: string, input: number) {
  const vector = [0.25, -0.5, 0.125];
  const embedding =
    b?.encoding_format === "base64"
      ? Buffer.from(new Float32Array(vector).buffer).toString("base64")
      : vector;
  res.writeHead(200, { "content-type": "application/json" });
  res.end(
    JSON.stringify({
      object: "list",
      data: [{ object: "embedding", index: 0, embedding }],
      model,
      usage: { prompt_tokens: input, total_tokens: input },
    }),
  );
}
