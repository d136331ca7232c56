"""An output stream cut into chunks anywhere never lets a private key's
armour or body past redaction (adapters/outputsink.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from uok.adapters.outputsink import OutputSink
from uok.adapters.secrets import redact

KEY = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join("QUJD" * 16 for _ in range(5)) + "\n-----END RSA PRIVATE KEY-----"
TEXT = "before\n" + KEY + "\nafter " + "y" * 50


@pytest.mark.parametrize("size", [1, 7, 31, 64, 100, len(TEXT)])
def test_a_key_split_across_chunks_is_redacted_whole(tmp_path: Path, size: int):
    sink = OutputSink(tmp_path / "out", redact)
    data = TEXT.encode()
    for i in range(0, len(data), size):
        sink.write(data[i : i + size])
    kept = sink.close()
    written = (tmp_path / "out").read_text()
    for text in (written, kept.tail):
        assert "PRIVATE KEY-----" not in text.replace("[REDACTED:Private Key", "")
        assert "QUJD" not in text
    assert written.startswith("before\n") and written.endswith("after " + "y" * 50)


def test_megabytes_of_key_like_lines_are_redacted_in_linear_time():
    """Lines of base64 characters (a long task's output) once made the cut-off
    private key pattern try every line start to the end: about 50 s for these
    128 KiB. A key's END line is still found."""
    import time

    from uok.adapters.secrets import redact

    text = "xxxxxxxxxxxxxxxxxxx\n" * 6554
    started = time.monotonic()
    assert redact(text) == text
    assert time.monotonic() - started < 5
    tail = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n"
    assert "REDACTED:Private Key" in redact(text + tail)
