"""A delta manifest resolved against its full one (projections/manifests.py):
the same mapping as ``{**full, **delta}``, the full one decoded only when a
key the delta lacks is looked up or the whole is iterated."""

from __future__ import annotations

from uok.projections import manifests


def test_a_resolved_delta_is_the_merged_manifest_and_decodes_its_base_only_when_needed():
    full = {"a": b"1" * 16, "b": b"2" * 16, "c": b"3" * 16}
    delta = {"b": b"9" * 16, "d": b"4" * 16}
    stored = {10: manifests.encode(full, None)}
    got = manifests.resolve(manifests.encode(delta, 10), stored.get)
    assert isinstance(got, manifests.Resolved)
    assert got["b"] == b"9" * 16 and "d" in got and got.get("d") == b"4" * 16
    assert got._full is None  # keys the delta holds: the full manifest not decoded
    assert got["a"] == b"1" * 16 and "z" not in got and got.get("z") is None
    assert got == {**full, **delta} and dict(got.items()) == {**full, **delta} and len(got) == 4
    assert manifests.resolve(manifests.encode(delta, 20), stored.get) is None  # its base is gone
    assert manifests.resolve(manifests.encode(delta, 10), {10: manifests.encode(delta, 0)}.get) is None  # not full
    assert manifests.delta_base(stored[10]) == 0 and manifests.is_full(stored[10])
    assert manifests.delta_base(manifests.encode(delta, 10)) == 10 and not manifests.is_full(
        manifests.encode(delta, 10)
    )
    assert manifests.full(stored[10]) == full
