import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { SpanAttributes, TraceSpan, Tracer } from '../ports/tracer.js';

/**
 * The tracer port on OpenTelemetry's SDK, exported as OTLP/HTTP (JSON) to a collector.
 *
 * Nothing is registered globally (no global tracer provider, context manager or propagator): the
 * gateway passes this instance in, so spans are parented explicitly through `Context` values and
 * a library that also uses OpenTelemetry in the same process is not affected.
 *
 * Sampling: a request with a valid incoming `traceparent` follows the caller's sampled flag;
 * otherwise `sampleRatio` of new traces are recorded. An unsampled span still hands a valid
 * `traceparent` (flag 00) to the provider, so the trace id is carried either way.
 */
export interface OtelTracerOptions {
  serviceName: string;
  /** The collector's OTLP/HTTP traces URL, e.g. http://otel-collector:4318/v1/traces. */
  otlpEndpoint: string;
  /** Share of new traces recorded, 0..1. */
  sampleRatio: number;
  /** Extra headers on each export (e.g. a collector's credentials). */
  headers?: Record<string, string>;
}

export interface OtelTracer extends Tracer {
  /** Export every ended span now (tests; shutdown() does it too). */
  forceFlush(): Promise<void>;
}

/** Bounds so a missing collector cannot hold up shutdown for the SDK's default 30 s. */
const EXPORT_TIMEOUT_MS = 5_000;

const propagator = new W3CTraceContextPropagator();
const getter = {
  keys: (c: Record<string, string>) => Object.keys(c),
  get: (c: Record<string, string>, k: string) => c[k],
};
const setter = { set: (c: Record<string, string>, k: string, v: string) => { c[k] = v; } };

/** The port allows undefined values (an unrouted request has no id); OpenTelemetry does not. */
function defined(attributes: SpanAttributes | undefined): Attributes | undefined {
  if (!attributes) return undefined;
  const out: Attributes = {};
  for (const [k, v] of Object.entries(attributes)) if (v !== undefined) out[k] = v;
  return out;
}

/**
 * A child carrying `http.method` is a call the gateway makes to the provider (CLIENT); the other
 * children are the gateway's own stages (INTERNAL). The port has no kind, and this is the one
 * attribute the wiring sets on provider calls only.
 */
function childKind(attributes: SpanAttributes | undefined): SpanKind {
  return attributes?.['http.method'] !== undefined ? SpanKind.CLIENT : SpanKind.INTERNAL;
}

export function createOtelTracer(opts: OtelTracerOptions): OtelTracer {
  const exporter = new OTLPTraceExporter({ url: opts.otlpEndpoint, headers: opts.headers, timeoutMillis: EXPORT_TIMEOUT_MS });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: opts.serviceName }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(opts.sampleRatio) }),
    spanProcessors: [new BatchSpanProcessor(exporter, { exportTimeoutMillis: EXPORT_TIMEOUT_MS })],
  });
  const tracer = provider.getTracer('cancel-gateway');

  function wrap(span: Span): TraceSpan {
    const ctx: Context = trace.setSpan(ROOT_CONTEXT, span);
    let ended = false;
    let header: string | undefined;
    return {
      child(name, attributes) {
        return wrap(tracer.startSpan(name, { kind: childKind(attributes), attributes: defined(attributes) }, ctx));
      },
      setAttributes(attributes) {
        if (!ended) span.setAttributes(defined(attributes)!);
      },
      traceparent() {
        if (header === undefined) {
          const carrier: Record<string, string> = {};
          propagator.inject(ctx, carrier, setter);
          header = carrier.traceparent;
        }
        return header;
      },
      end(failed) {
        if (ended) return; // the port's end() is idempotent; the SDK's is not
        ended = true;
        if (failed) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
      },
    };
  }

  return {
    startRequest(name, traceparent, attributes) {
      // An invalid or absent traceparent extracts nothing: the span then starts a new trace.
      const parent = traceparent ? propagator.extract(ROOT_CONTEXT, { traceparent }, getter) : ROOT_CONTEXT;
      return wrap(tracer.startSpan(name, { kind: SpanKind.SERVER, attributes: defined(attributes) }, parent));
    },
    forceFlush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}
