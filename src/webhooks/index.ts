export { WebhookDispatcher, type WebhookOptions } from './dispatcher.ts';
export { subscribeWebhookEvents, webhookEventNames, type WebhookEventName, type WebhookEvents, type WebhookPayload } from './events.ts';
export { DEFAULT_TOLERANCE_SEC, SIGNATURE_HEADER, signWebhook, verifyWebhookSignature, type SignatureCheck } from './signature.ts';
