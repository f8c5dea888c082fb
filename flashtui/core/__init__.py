"""Shared data and rules, standard library only: the one flashtui package the engine may import.

spec (what to run), results (one cell), session (a sweep's record), protocol (the wire),
units (every formatter), gpu_specs and model_catalog (built-in tables).
"""
