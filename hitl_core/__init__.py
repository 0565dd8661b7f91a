"""HITL Workbench engine: data, models, storage and the human-in-the-loop cycle.

This package never imports streamlit, so it can be driven from a script, a test or the CLI.
"""
