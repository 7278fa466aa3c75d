"""The identity cache behind the engine's reuse of schedules and layouts across rows."""

import pytest

from mhimmune.core.identity_cache import IdentityCache


def test_identity_cache_reuses_a_value_for_the_same_objects_only():
    """The same object with the same extras hits; an equal but distinct object, or other
    extras, compute anew; when full (size 2) the least recently used entry goes first."""
    calls: list[int] = []
    cache: IdentityCache[int] = IdentityCache(2)

    def value(n: int):
        return lambda: calls.append(n) or n

    a, b = [1.5], [1.5]
    assert cache.get((a,), value(1)) == 1
    assert cache.get((a,), value(99)) == 1  # hit: same object
    assert cache.get((b,), value(2)) == 2  # equal, not the same object
    assert cache.get((a,), value(3), extra=(0.5,)) == 3  # other extras; evicts (a,)
    assert calls == [1, 2, 3] and len(cache) == 2
    assert cache.get((a,), value(4)) == 4  # (a,) was evicted; now evicts (b,)
    assert cache.get((b,), value(5)) == 5
    assert cache.get((a,), value(6)) == 4  # still there: (a, 0.5) was the oldest
    assert cache.get((a,), value(7), extra=(0.5,)) == 7
    assert calls == [1, 2, 3, 4, 5, 7]
    with pytest.raises(ValueError, match="size: must be ≥ 1"):
        IdentityCache(0)
