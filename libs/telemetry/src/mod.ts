export type { Context, Span, Tracer } from "@opentelemetry/api";
// Re-exported so callers can set span kind and status without depending on @opentelemetry/api themselves.
export { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
export type { Logger } from "pino";
export type { HeaderCarrier } from "./headers.js";
export { extractTraceContext, injectTraceContext } from "./headers.js";
export type { LoggerOptions } from "./logger.js";
export { createLogger } from "./logger.js";
export type { Telemetry, TelemetryOptions } from "./sdk.js";
export { startTelemetry } from "./sdk.js";
export { tracer } from "./tracer.js";
export { withSpan } from "./with-span.js";
