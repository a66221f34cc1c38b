"""The README's example, end to end."""

from __future__ import annotations

import manta


def test_square_example(cluster):
    @manta.remote
    def square(x):
        return x * x

    refs = [square.remote(i) for i in range(100)]
    assert manta.get(refs) == [i * i for i in range(100)]
