export { isPrivateAddress } from "./address.js";
export { type SendResult, USER_AGENT, WebhookSender } from "./sender.js";
export { startWebhookService, type WebhookService, type WebhookServiceOptions } from "./service.js";
export { type TickReport, WebhookWorker, type WebhookWorkerOptions } from "./worker.js";
