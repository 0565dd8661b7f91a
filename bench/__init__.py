"""Benchmarks of the HITL Workbench engine; run them as modules, e.g. ``python -m bench.loop``."""
