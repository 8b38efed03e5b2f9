export {
  type CallOptions,
  type FailMode,
  type FailureInfo,
  newId,
  Tollgate,
  type TollgateOptions,
} from "./client.js";
export { statusOfDenial, TollgateApiError, TollgateLimitError, TollgateUnavailableError } from "./errors.js";
export { bindingLimit, denialResponse, rateLimitHeaders, retryAfterOf } from "./headers.js";
export { tollgateExpress } from "./middleware/express.js";
export { tollgateFastify } from "./middleware/fastify.js";
export { type GuardOptions, guard, type Identity } from "./middleware/guard.js";
export { tollgateHono } from "./middleware/hono.js";
export type { RecorderOptions } from "./recorder.js";
export type * from "./types.js";
