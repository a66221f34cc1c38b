"""``ray.tests``: the helpers Ray's test files import from Ray's test package."""
