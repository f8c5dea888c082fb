"""UI-side process control, no torch: the worker client and the one sweep recorder."""
