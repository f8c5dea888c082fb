"""Short garbage-collector pauses in the UI process while a sweep streams.

Measured with benchmarks/tui_latency.py (2-core CPU): about once a second a full
(generation 2) collection walked every object the app had ever made, the imported
textual/rich/plotext modules and the screens' widgets included, and stopped the UI
for 90-150 ms: the long tail of key -> screen latency. Once the run screen and its
charts exist, those objects live as long as the app; ``gc.freeze`` moves them out of
the collector's way, so later collections walk only what the sweep made. Reference
counting still frees frozen objects; only reference cycles among them would be kept,
and a collection right before the freeze leaves none.
"""

from __future__ import annotations

import gc

_frozen = False


def freeze_long_lived() -> bool:
    """Collect once, then freeze everything alive now (once per process). True if it did."""
    global _frozen
    if _frozen:
        return False
    _frozen = True
    gc.collect()
    gc.freeze()
    return True
