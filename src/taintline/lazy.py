"""Modules imported on their first use.

pyarrow (with numpy, which it imports) costs about 0.15 s of start-up, a sixth of a re-scan
of an unchanged tree, which never converts anything to Arrow. The modules on the scan path
name it through :class:`LazyModule`, so it is imported when an attribute is first read::

    if TYPE_CHECKING:
        import pyarrow as pa
    else:
        pa = LazyModule("pyarrow")

Written here rather than with :class:`importlib.util.LazyLoader`, which cannot defer a
submodule (``pyarrow.compute``: finding its spec imports the parent package).
"""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """Stands for the module ``name``; reading an attribute imports it (once: Python keeps it
    in ``sys.modules``) and returns the module's attribute."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"
