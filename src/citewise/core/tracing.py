"""OpenTelemetry traces: one tracer provider per process, exporters attached from settings.

Citewise's spans come from `tracer()` (and FastAPI's request spans from
`tracer_provider()`), whose provider is created once per process and forwards
finished spans to whatever processors are attached at the moment:
the app's lifespan attaches the one `configure_tracing` builds from
``observability.traces`` (console: one JSON line per span on stderr; otlp: OTLP
over HTTP to a collector; off: none) and detaches it, flushed, on shutdown.
Tests attach an in-memory exporter the same way. The provider also becomes the
OpenTelemetry global (once), so other instrumentation shares it.
"""

from __future__ import annotations

import sys
import threading

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from citewise.core.settings import ObservabilitySettings


class _Processors(SpanProcessor):
    """Forwards spans to the processors attached now; they come and go at runtime."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.attached: tuple[SpanProcessor, ...] = ()

    def add(self, processor: SpanProcessor) -> None:
        with self._lock:
            self.attached = (*self.attached, processor)

    def remove(self, processor: SpanProcessor) -> None:
        with self._lock:
            self.attached = tuple(p for p in self.attached if p is not processor)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for processor in self.attached:
            processor.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        for processor in self.attached:
            processor.on_end(span)

    def shutdown(self) -> None:
        for processor in self.attached:
            processor.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all(p.force_flush(timeout_millis) for p in self.attached)


_PROCESSORS = _Processors()
_LOCK = threading.Lock()
_PROVIDER: TracerProvider | None = None


def tracer_provider(service_name: str = "citewise") -> TracerProvider:
    """The process's tracer provider (created, and made the global one, on first use)."""
    global _PROVIDER
    with _LOCK:
        if _PROVIDER is None:
            _PROVIDER = TracerProvider(resource=Resource.create({"service.name": service_name}))
            _PROVIDER.add_span_processor(_PROCESSORS)
            trace.set_tracer_provider(_PROVIDER)
        return _PROVIDER


def tracer(name: str) -> trace.Tracer:
    """A tracer of Citewise's provider (spans reach the attached exporters)."""
    return tracer_provider().get_tracer(name)


class Tracing:
    """An attached span processor; `shutdown` detaches it after exporting what it holds."""

    def __init__(self, processor: SpanProcessor | None) -> None:
        self.processor = processor
        if processor is not None:
            _PROCESSORS.add(processor)

    def shutdown(self) -> None:
        """Detach the processor and flush it (idempotent)."""
        if self.processor is not None:
            _PROCESSORS.remove(self.processor)
            self.processor.shutdown()
            self.processor = None


def _one_line(span: ReadableSpan) -> str:
    return str(span.to_json(indent=None)) + "\n"


def configure_tracing(settings: ObservabilitySettings) -> Tracing:
    """Attach the exporter ``settings.traces`` names; shut the result down on exit.

    The OTLP exporter reads the standard ``OTEL_EXPORTER_OTLP_*`` variables for
    whatever `settings` leave unset (headers, certificates).
    """
    if settings.traces == "off":
        return Tracing(None)
    tracer_provider(settings.service_name)
    if settings.traces == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return Tracing(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint)))
    return Tracing(BatchSpanProcessor(ConsoleSpanExporter(out=sys.stderr, formatter=_one_line)))
