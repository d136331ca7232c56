"""Redaction over the committed corpus of secret shapes (tests/secret_corpus.py)."""

from __future__ import annotations

import pytest
from uok.adapters.secrets import redact, redact_data

from tests.secret_corpus import PLAIN, SHAPES


@pytest.mark.parametrize("name, text, secret", SHAPES, ids=[s[0] for s in SHAPES])
def test_every_shape_of_the_corpus_is_redacted(name: str, text: str, secret: str):
    out = redact(text)
    assert secret not in out and "[REDACTED:" in out
    assert secret[:12] not in out and secret[-12:] not in out  # not even a recognisable piece
    assert redact(out) == out  # idempotent


@pytest.mark.parametrize("text", PLAIN)
def test_ordinary_output_is_left_alone(text: str):
    assert redact(text) == text


def test_nested_data_is_redacted_in_every_string():
    _name, text, secret = SHAPES[0]
    out = redact_data({"a": [text, {"b": text}], "n": 3})
    assert secret not in repr(out) and out["n"] == 3


def test_redacting_a_big_plain_output_is_fast():
    import time

    text = "\n".join(f"line {i}: step ok, value={i * 7} ms" for i in range(20_000))
    started = time.perf_counter()
    assert redact(text) == text
    assert time.perf_counter() - started < 2.0  # plain lines skip detect-secrets' plugins
