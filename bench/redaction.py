"""Streaming redaction of task output: MB/s through an OutputSink, the fast
pass (uok.adapters.secrets.redact) against the line-by-line reference
(tests/redaction_reference.py: every pattern over the whole text, every
detect-secrets plugin on every candidate line), A/B interleaved in one
process.

MB/s are per CPU second of this process (``time.process_time``: the
figure an idle core gives, little moved by other load; the sink's work is
one thread). Each round writes the same generated output through an
:class:`~uok.adapters.outputsink.OutputSink` in 64 KiB chunks (as the
executor reads a task's pipe): decode, redact, write, hash. Both files
must be byte-identical (the shortcuts are exact); the bench fails if not.

Outputs (``--mb`` MB each, default 1):

* **plain**: log lines (``line N: step ok, value=…``);
* **tokens**: lines full of token-like strings: npm integrity hashes,
  commit ids and UUIDs, base64 and base32 blobs, sha256 ids (every line
  is a candidate for detect-secrets' plugins);
* **seeded**: ``tokens`` with a shape of the secret corpus
  (tests/secret_corpus.py, but its 40 KB padded lines and the key whose
  END line is cut off) every 50 lines: each secret must be redacted.

    .venv/bin/python bench/redaction.py                 # --mb 1 --repeat 3
    .venv/bin/python bench/redaction.py --mb 0.5 --repeat 5
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from uok.adapters.outputsink import OutputSink
from uok.adapters.secrets import redact

from tests import redaction_reference
from tests.secret_corpus import SHAPES

CHUNK = 64 * 1024
# not the 40 KB padded lines (they would be most of the output), nor the key
# without its END line (everything after it is redacted as part of the key)
SEEDS = [text for name, text, _ in SHAPES if len(text) < 1000 and name != "private key, end cut off"]


def plain(size: int, rnd: random.Random) -> str:
    lines, n, i = [], 0, 0
    while n < size:
        line = f"line {i}: step ok, value={rnd.randrange(10**6)} ms"
        lines.append(line)
        n += len(line) + 1
        i += 1
    return "\n".join(lines) + "\n"


def tokens(size: int, rnd: random.Random, seed_every: int = 0) -> str:
    lines, n, i = [], 0, 0
    while n < size:
        b = rnd.randbytes(64)
        k = i % 5
        if seed_every and i % seed_every == seed_every - 1:
            line = SEEDS[(i // seed_every) % len(SEEDS)]
        elif k == 0:
            line = f'  "integrity": "sha512-{base64.b64encode(b).decode()}",'
        elif k == 1:
            line = f"commit {hashlib.sha1(b).hexdigest()} {uuid.UUID(bytes=b[:16])}"
        elif k == 2:
            line = f"  {base64.urlsafe_b64encode(b[:48]).decode()} {base64.b64encode(b[:30]).decode()}"
        elif k == 3:
            line = f"id={hashlib.sha256(b).hexdigest()} ok"
        else:
            line = f"step {i}: {base64.b32encode(b[:20]).decode()} done"
        lines.append(line)
        n += len(line) + 1
        i += 1
    return "\n".join(lines) + "\n"


def through_sink(data: bytes, fn: Callable[[str], str], path: Path) -> tuple[float, str]:
    """(CPU seconds, sha256 of the file) for ``data`` written through a sink in chunks."""
    started = time.process_time()
    sink = OutputSink(path, fn)
    for i in range(0, len(data), CHUNK):
        sink.write(data[i : i + CHUNK])
    kept = sink.close()
    return time.process_time() - started, kept.sha256


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    size = int(args.mb * 1_000_000)
    rnd = random.Random(12)
    outputs = {
        "plain": plain(size, rnd).encode(),
        "tokens": tokens(size, rnd).encode(),
        "seeded": tokens(size, rnd, seed_every=50).encode(),
    }
    redact("warm up: password=abcdefgh1")  # import and configure detect-secrets outside the timing
    redaction_reference.redact("warm up: password=abcdefgh1")
    contenders = {"fast": redact, "reference": redaction_reference.redact}
    print(f"| output | MB | fast MB/s | reference MB/s | speed-up |  (CPU time, median of {args.repeat}, interleaved)")
    print("|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in outputs.items():
            times: dict[str, list[float]] = {c: [] for c in contenders}
            for r in range(args.repeat):
                order = list(contenders) if r % 2 == 0 else list(reversed(contenders))
                digests = {}
                for c in order:
                    seconds, digests[c] = through_sink(data, contenders[c], Path(tmp) / f"{name}.{c}")
                    times[c].append(seconds)
                if len(set(digests.values())) != 1:
                    raise SystemExit(f"{name}: the fast pass and the reference wrote different files")
            mb = len(data) / 1e6
            fast, ref = (mb / statistics.median(times[c]) for c in ("fast", "reference"))
            print(f"| {name} | {mb:.2f} | {fast:.1f} | {ref:.2f} | {fast / ref:.1f}x |", flush=True)
        seeded = (Path(tmp) / "seeded.fast").read_text()
        leaked = [s for _, text, s in SHAPES if text in SEEDS and s in seeded]
        if leaked:
            raise SystemExit(f"seeded: {len(leaked)} secrets of the corpus were not redacted")


if __name__ == "__main__":
    main()
