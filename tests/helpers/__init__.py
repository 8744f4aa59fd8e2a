"""Helpers shared by test modules (fixtures stay in ``tests/conftest.py``)."""

# What the real-library tests built, one line per engine; printed in the test session's summary, so CI's log says
# how many engines TensorRT-RTX really built.
ENGINES_BUILT: list[str] = []
