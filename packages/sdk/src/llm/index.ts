export { type AiSdkMeterOptions, tollgateAiMiddleware } from "./ai-sdk.js";
export { wrapAnthropic } from "./anthropic.js";
export { admit, type LlmMeterOptions, MeteredCall } from "./metered.js";
export { wrapOpenAI } from "./openai.js";
export { countTokens, estimateMessages } from "./tokens.js";
export * from "./usage.js";
