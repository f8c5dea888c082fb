"""TOML reading on every supported Python: the standard ``tomllib`` (3.11+), else ``tomli``.

Python 3.10 has no ``tomllib``; pyproject depends on ``tomli`` there (the same API: tomllib
is tomli, adopted). Import ``tomllib`` from here, never directly.
"""

from __future__ import annotations

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = ["tomllib"]
