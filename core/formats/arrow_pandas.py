"""Keep pyarrow from importing pandas for nothing.

The first time pyarrow turns any Python value into Arrow (`pa.scalar`, `pa.array`, a scalar argument of a compute
function), its lazy pandas shim imports pandas only to ask whether the value is a pandas object. That import took
0.5 to 1.4 s of a 2.4 to 3.8 s first load of 2,000 JSON files here; the pyarrow + delta-rs floor never pays it.
Nothing in this product hands pyarrow a pandas object, so importing `core.formats` (the readers' package, imported
lazily by a run that has files to read) calls `skip_pandas_probe()`: pyarrow's shim makes its one probe while pandas
cannot be found, and records pandas as absent.

Whoever imports pandas later (pyspark does) gets pyarrow's pandas support back: the first import of pandas after the
skip tells the shim to look again (`_ShimLooksAgain`), so `Table.from_pandas` of nullable columns and `pa.array` of
a pandas Series work as usual (tests/unit/test_arrow_pandas.py).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import sys
import threading
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

import pyarrow as pa


class _ShimLooksAgain(importlib.abc.Loader):
    """pandas' own loader, then pyarrow's shim asked for pandas again (it imports for real when asked)."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        # The property is the shim's "import pandas now, for real". A pandas older than pyarrow supports fails it:
        # pandas still imports, and pyarrow goes without it, as it would have.
        with contextlib.suppress(ImportError):
            pa.lib._pandas_api.pd  # noqa: B018

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _PandasProbe(importlib.abc.MetaPathFinder):
    """Hides pandas from the thread making pyarrow's probe while it is made; afterwards, on the first import of
    pandas from anywhere, takes itself off `sys.meta_path` and wraps pandas' loader in `_ShimLooksAgain`."""

    def __init__(self) -> None:
        self.probing_thread: int | None = threading.get_ident()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != "pandas":
            return None
        if self.probing_thread == threading.get_ident():
            raise ModuleNotFoundError("hidden from pyarrow's probe", name=fullname)
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _ShimLooksAgain(spec.loader)
        return spec


def skip_pandas_probe() -> None:
    """Make pyarrow's pandas shim record pandas as absent until pandas is imported, unless it is imported already
    (then the probe is free). Once per process: the shim probes once."""
    if "pandas" in sys.modules or not hasattr(pa.lib, "_pandas_api"):
        return
    if any(isinstance(finder, _PandasProbe) for finder in sys.meta_path):
        return
    probe = _PandasProbe()
    sys.meta_path.insert(0, probe)
    try:
        pa.scalar(0)
    finally:
        probe.probing_thread = None
