import { type Tracer, trace } from "@opentelemetry/api";

/** The tracer all Hangar code creates spans with. */
export function tracer(): Tracer {
  return trace.getTracer("hangar");
}
