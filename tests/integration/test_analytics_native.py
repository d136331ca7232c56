"""The analytical copy's chain check in C (``uok.adapters.analytics._chain``):
on pages of rows built with the domain's own chain
(:func:`uok.domain.log.chain.link`), it finds every page intact and names
the first row of a damaged one, whatever the damage; buffers that do not
fit together are refused. (The load through it, and through the DuckDB and
hashlib checks without it, is tests/integration/test_analytics_chain.py.)"""

from __future__ import annotations

import array
import itertools
import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from uok.adapters.analytics import batches
from uok.domain.log.chain import GENESIS, link

if batches.FIRST_BROKEN is None:
    if os.environ.get("CI"):
        pytest.fail("the C chain check (uok.adapters.analytics._chain) was not built", pytrace=False)
    pytest.skip("the C chain check was not built here (no C compiler or libcrypto)", allow_module_level=True)

FIRST_BROKEN = batches.FIRST_BROKEN
ROW = st.tuples(
    st.text(max_size=40),  # stream
    st.integers(min_value=0, max_value=2**63 - 1),  # version
    st.text(max_size=20),  # topic
    st.binary(max_size=600),  # payload
)


def page(rows: list[tuple[str, int, str, bytes]], first: int, prev: bytes) -> list:
    """``first_broken``'s arguments for ``rows`` (hashes by the domain's chain)."""
    hashes, h = [], prev
    for i, (stream, version, topic, payload) in enumerate(rows):
        h = link(h, first + i, stream, version, topic, payload)
        hashes.append(h)
    u32 = struct.Struct(">I").pack
    return [
        prev,
        first,
        b"".join(struct.pack(">Q", r[1]) for r in rows),
        b"".join(u32(len(r[0].encode())) for r in rows),
        b"".join(u32(len(r[2].encode())) for r in rows),
        b"".join(u32(len(r[3])) for r in rows),
        b"".join(r[0].encode() for r in rows),
        b"".join(r[2].encode() for r in rows),
        b"".join(r[3] for r in rows),
        b"".join(hashes),
    ]


def flipped(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(ROW, min_size=1, max_size=30), first=st.integers(1, 2**40), data=st.data())
def test_an_intact_page_passes_and_any_flipped_byte_names_its_row(rows, first, data):
    args = page(rows, first, GENESIS)
    assert FIRST_BROKEN(*args) == -1
    # a flipped byte in a row's stream, topic or payload, or in its stored hash: that row
    owners = {6: 0, 7: 2, 8: 3}
    column = data.draw(st.sampled_from([i for i in (6, 7, 8) if args[i]] + [9]), label="column")
    at = data.draw(st.integers(0, len(args[column]) - 1), label="byte")
    if column == 9:
        row = at // 32
    else:  # the row whose bytes hold ``at``
        sizes = [len(r[owners[column]].encode() if column != 8 else r[3]) for r in rows]
        row, end = 0, sizes[0]
        while at >= end:
            row += 1
            end += sizes[row]
    damaged = list(args)
    damaged[column] = flipped(args[column], at)
    assert FIRST_BROKEN(*damaged) == row
    # a flipped bit in a version, or a page checked as if it started elsewhere
    v = data.draw(st.integers(0, len(rows) - 1), label="version row")
    damaged = list(args)
    damaged[2] = flipped(args[2], 8 * v + 7)
    assert FIRST_BROKEN(*damaged) == v
    assert FIRST_BROKEN(*[args[0], first + 1, *args[2:]]) == 0
    assert FIRST_BROKEN(*[GENESIS[::-1], *args[1:]]) == 0


def test_rows_swapped_or_a_forged_hash_are_named_at_the_first_row():
    rows = [(f"s{i}", i, "t", f'{{"i": {i}}}'.encode()) for i in range(50)]
    args = page(rows, 1, GENESIS)
    swapped = page(rows, 1, GENESIS)
    swapped[8] = page([*rows[:20], rows[21], rows[20], *rows[22:]], 1, GENESIS)[8]
    assert FIRST_BROKEN(*swapped) == 20
    forged = list(args)  # row 30's hash replaced, rows after it re-linked to the forgery
    forged[9] = args[9][: 30 * 32] + bytes(32) + page(rows[31:], 31, bytes(32))[9]
    assert FIRST_BROKEN(*forged) == 30


def test_large_payloads_and_an_empty_page():
    rows = [("s", 1, "t", b"x" * 3_000_000), ("s", 2, "t", b""), ("s", 3, "t", b"y" * 70_000)]
    assert FIRST_BROKEN(*page(rows, 7, GENESIS)) == -1
    assert FIRST_BROKEN(GENESIS, 1, b"", b"", b"", b"", b"", b"", b"", b"") == -1


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda a: a.__setitem__(0, a[0][:31]), id="short-prev"),
        pytest.param(lambda a: a.__setitem__(9, a[9][:-1]), id="partial-hash"),
        pytest.param(lambda a: a.__setitem__(2, a[2][:-8]), id="versions-short"),
        pytest.param(lambda a: a.__setitem__(5, a[5] + b"\0\0\0\0"), id="lengths-long"),
        pytest.param(lambda a: a.__setitem__(8, a[8][:-1]), id="payloads-short"),
        pytest.param(lambda a: a.__setitem__(6, a[6] + b"x"), id="streams-long"),
        pytest.param(lambda a: a.__setitem__(1, -1), id="negative-position"),
    ],
)
def test_buffers_that_do_not_fit_together_are_refused(change):
    args = page([("s", 1, "t", b"{}"), ("s", 2, "t", b"[1]")], 1, GENESIS)
    change(args)
    with pytest.raises((ValueError, OverflowError)):
        FIRST_BROKEN(*args)


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(st.tuples(*[st.integers(0, 70_000)] * 3), max_size=50))
def test_offsets_are_the_running_sums_of_each_column(rows):
    """A packed page's interleaved big-endian lengths as three columns of
    Arrow offsets (native int32, 0 first)."""
    lengths = b"".join(struct.pack(">III", *r) for r in rows)
    got = [list(array.array("i", column)) for column in batches.OFFSETS(lengths, 3)]
    assert got == [list(itertools.accumulate((r[c] for r in rows), initial=0)) for c in range(3)]


def test_offsets_refuse_a_partial_row_and_a_column_over_2_gib():
    with pytest.raises(ValueError):
        batches.OFFSETS(b"\0" * 13, 3)
    with pytest.raises(OverflowError):
        batches.OFFSETS(struct.pack(">III", 2**31 - 1, 0, 0) * 2, 3)


SEP = b"\x1e"


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(-(2**63), 2**63 - 1), st.binary(max_size=12), st.binary(max_size=12), st.binary(max_size=40)
        ),
        min_size=1,
        max_size=30,
    )
)
def test_split_page_takes_a_page_packed_with_separators_apart(rows):
    """``split_page`` on what sources.PACKED_SPLIT makes of ``rows``: the
    versions (native and big-endian) and each column's values joined, offsets
    and big-endian lengths; None when a value holds the separator byte."""
    versions = ",".join(str(r[0]) for r in rows).encode()
    columns = [[r[c] for r in rows] for c in (1, 2, 3)]
    got = batches.SPLIT_PAGE(len(rows), versions, *(SEP.join(values) for values in columns))
    if any(SEP in v for values in columns for v in values):
        assert got is None
        return
    assert got is not None
    assert got[0] == b"".join(struct.pack("=q", r[0]) for r in rows)
    assert got[1] == b"".join(struct.pack(">q", r[0]) for r in rows)
    for c, values in enumerate(columns):
        data, offsets, lengths = got[2 + 3 * c : 5 + 3 * c]
        assert data == b"".join(values)
        assert list(array.array("i", offsets)) == list(itertools.accumulate(map(len, values), initial=0))
        assert lengths == b"".join(struct.pack(">I", len(v)) for v in values)


@pytest.mark.parametrize(
    ("n", "versions", "streams"),
    [
        pytest.param(2, b"1,2", b"a" + SEP + b"b" + SEP + b"c", id="a-value-holding-the-separator"),
        pytest.param(3, b"1,2", b"a" + SEP + b"b", id="a-value-missing"),
        pytest.param(2, b"1,2,3", b"a" + SEP + b"b", id="a-version-too-many"),
        pytest.param(2, b"1,x", b"a" + SEP + b"b", id="a-version-not-a-number"),
        pytest.param(2, b"1,", b"a" + SEP + b"b", id="a-version-empty"),
        pytest.param(1, b"12345678901234567890", b"a", id="a-version-over-19-digits"),
        pytest.param(0, b"", b"", id="no-rows"),
    ],
)
def test_split_page_returns_none_for_a_page_it_cannot_split(n, versions, streams):
    topics = payloads = SEP.join([b"t"] * n)
    assert batches.SPLIT_PAGE(n, versions, streams, topics, payloads) is None
