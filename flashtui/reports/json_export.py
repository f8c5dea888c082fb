"""The session as the documented JSON (docs/schema.md): ``Session.to_dict()``, verbatim.

Keys keep the documented order (not sorted) and floats are written with Python's
shortest round-tripping repr, so json -> load -> json is byte-for-byte identical.
NaN/Infinity are refused (they are not JSON); a missing number is ``null``.
"""

from __future__ import annotations

import json

from flashtui.core.session import Session, SessionError


def render(session: Session) -> str:
    try:
        return json.dumps(session.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    except ValueError as exc:
        raise SessionError(f"session {session.id} holds a value JSON cannot carry: {exc}") from None


def parse(text: str) -> Session:
    """The inverse of :func:`render` (SessionError on anything else)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SessionError(f"not valid JSON: {exc}") from None
    return Session.from_dict(data)


__all__ = ["parse", "render"]
