"""The one name for an API object as it travels: decoded JSON, a `dict` with string keys."""
from __future__ import annotations

from typing import Any, TypeAlias

Obj: TypeAlias = dict[str, Any]
