"""The units read model's chunk layout helpers (projections/units.py,
projections/chunks.py): the unit count read from an encoded plan part's
header, and an index told apart from a part's own encoding."""

from __future__ import annotations

import msgspec
import pytest
from uok.domain.policies.lifecycle import UnitRecord
from uok.projections import chunks
from uok.projections.units import PlanUnits, UnitRuntimeProjection


@pytest.mark.parametrize("n", [0, 1, 15, 16, 65, 65535, 65536])
def test_the_unit_count_is_read_from_the_header_of_any_size(n: int):
    part = PlanUnits(units={f"u{i}": UnitRecord(unit_id=f"u{i}", plan_id="p") for i in range(n)})
    data = msgspec.msgpack.encode(part)
    assert UnitRuntimeProjection().count(data) == n
    assert not chunks.is_index(data)


def test_an_index_is_not_a_part():
    index = chunks.encode_index([b"\x01" * 16, b"\x02" * 16])
    assert chunks.is_index(index) and chunks.chunk_digests(index) == [b"\x01" * 16, b"\x02" * 16]
