"""Panels of the Run screen. Each gets its data through reactive attributes."""
