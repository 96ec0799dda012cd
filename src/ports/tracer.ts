/**
 * Tracing (issue 19 item 8): W3C `traceparent` accepted and propagated to the provider; a span for
 * the request, each stage and each provider call, tagged with the Spine trace id. Off by default:
 * the no-op tracer costs nothing per request.
 *
 * Contract:
 * - `startRequest` continues the caller's trace when `traceparent` is valid W3C, else starts one.
 * - `child` spans nest under their parent; `end()` is idempotent; `traceparent()` is the header
 *   value that makes the provider's work a child of this span (undefined when tracing is off).
 * - Attributes never carry patient data, bodies or tokens (paths, ids, codes, statuses only).
 */
export type SpanAttributes = Record<string, string | number | boolean | undefined>;

export interface TraceSpan {
  child(name: string, attributes?: SpanAttributes): TraceSpan;
  setAttributes(attributes: SpanAttributes): void;
  traceparent(): string | undefined;
  end(failed?: boolean): void;
}

export interface Tracer {
  startRequest(name: string, traceparent: string | undefined, attributes?: SpanAttributes): TraceSpan;
  shutdown(): Promise<void>;
}

const NO_SPAN: TraceSpan = {
  child: () => NO_SPAN,
  setAttributes() {},
  traceparent: () => undefined,
  end() {},
};

export const noTracer: Tracer = {
  startRequest: () => NO_SPAN,
  shutdown: async () => {},
};
