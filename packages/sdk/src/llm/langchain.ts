import { BaseCallbackHandler } from "@langchain/core/callbacks/base";
import type { LLMResult } from "@langchain/core/outputs";
import type { Tollgate } from "../client.js";
import type { Dimensions, Values } from "../types.js";
import { fromLangChain } from "./usage.js";

export interface LangChainMeterOptions {
  tollgate: Tollgate;
  customer: string | (() => string);
  dimensions?: Dimensions | (() => Dimensions);
  /** @default "llm.completion" */
  eventType?: string;
}

const RUNS_MAX = 10_000;

/**
 * A LangChain callback handler that records one event per model call with the usage the model reported
 * (`usage_metadata`, else `llmOutput.tokenUsage`), dimensions `model` and `run` (the id of the outermost
 * run: one agent or chain invocation). Recording goes through the client's batch buffer.
 *
 * @example await chain.invoke(input, { callbacks: [new TollgateCallbackHandler({ tollgate, customer: "acme" })] })
 */
export class TollgateCallbackHandler extends BaseCallbackHandler {
  name = "tollgate";
  private readonly parents = new Map<string, string | undefined>();
  private readonly models = new Map<string, string | undefined>();

  constructor(private readonly options: LangChainMeterOptions) {
    super();
  }

  private track(runId: string, parentRunId: string | undefined): void {
    if (this.parents.size >= RUNS_MAX) this.parents.clear();
    this.parents.set(runId, parentRunId);
  }

  private root(runId: string): string {
    let id = runId;
    for (let i = 0; i < 100; i++) {
      const parent = this.parents.get(id);
      if (!parent) return id;
      id = parent;
    }
    return id;
  }

  override async handleChainStart(_c: unknown, _i: unknown, runId: string, parentRunId?: string) {
    this.track(runId, parentRunId);
  }

  private modelStart(
    runId: string,
    parentRunId: string | undefined,
    extra?: Record<string, unknown>,
    metadata?: Record<string, unknown>,
  ) {
    this.track(runId, parentRunId);
    const params = (extra?.invocation_params ?? {}) as Record<string, unknown>;
    const model = (metadata?.ls_model_name ?? params.model ?? params.model_name ?? params.modelName) as
      | string
      | undefined;
    if (this.models.size >= RUNS_MAX) this.models.clear();
    this.models.set(runId, model);
  }

  override async handleLLMStart(
    _llm: unknown,
    _prompts: string[],
    runId: string,
    parentRunId?: string,
    extraParams?: Record<string, unknown>,
    _tags?: string[],
    metadata?: Record<string, unknown>,
  ) {
    this.modelStart(runId, parentRunId, extraParams, metadata);
  }

  override async handleChatModelStart(
    _llm: unknown,
    _messages: unknown,
    runId: string,
    parentRunId?: string,
    extraParams?: Record<string, unknown>,
    _tags?: string[],
    metadata?: Record<string, unknown>,
  ) {
    this.modelStart(runId, parentRunId, extraParams, metadata);
  }

  override async handleLLMError(_err: unknown, runId: string) {
    this.models.delete(runId);
  }

  override async handleLLMEnd(output: LLMResult, runId: string) {
    const values = usageOf(output);
    let model = this.models.get(runId);
    this.models.delete(runId);
    // biome-ignore lint/suspicious/noExplicitAny: generation messages are read defensively
    const first = output.generations?.[0]?.[0] as any;
    model ??= first?.message?.response_metadata?.model_name ?? first?.message?.response_metadata?.model;
    const base = this.options.dimensions;
    const dimensions: Dimensions = {
      ...(typeof base === "function" ? base() : base),
      run: this.root(runId),
      ...(model ? { model } : {}),
    };
    const customer =
      typeof this.options.customer === "function" ? this.options.customer() : this.options.customer;
    this.options.tollgate.record({
      id: `lc_${runId}`,
      type: this.options.eventType ?? "llm.completion",
      customer,
      values,
      dimensions,
    });
    this.parents.delete(runId);
  }
}

function usageOf(output: LLMResult): Values {
  const total: Values = { tokens_in: 0, tokens_out: 0 };
  let found = false;
  for (const list of output.generations ?? []) {
    for (const g of list) {
      // biome-ignore lint/suspicious/noExplicitAny: usage_metadata lives on chat generations only
      const meta = (g as any).message?.usage_metadata;
      if (!meta) continue;
      found = true;
      for (const [k, v] of Object.entries(fromLangChain(meta))) total[k] = (total[k] ?? 0) + v;
    }
  }
  if (found) return total;
  const u = (output.llmOutput?.tokenUsage ?? output.llmOutput?.estimatedTokenUsage ?? {}) as Record<
    string,
    number
  >;
  return { tokens_in: u.promptTokens ?? 0, tokens_out: u.completionTokens ?? 0 };
}
