"""OpenTelemetry traces of runs (``uok trace``, ``uok run --otlp-endpoint``).

:mod:`.ids` is light (hashing only; the executor imports it for each task's
``TRACEPARENT``); :mod:`.spans` and :mod:`.export` need the ``otel`` extra.
"""
