"""``manta.experimental`` (Ray's ``ray.experimental``): older homes of Ray APIs that moved."""
