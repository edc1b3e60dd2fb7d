export { config } from "./config.js";
export { newSigningSecret, SECRET_PREFIX, signatureHeader } from "./signing.js";
export type { WebhooksServiceOptions } from "./webhooks-service.js";
export { FEED_CONSUMER, WebhooksService } from "./webhooks-service.js";
