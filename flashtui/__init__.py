"""flashtui: what does FlashAttention buy me here? Measured, side by side, with provenance."""

__version__ = "0.1.0"
