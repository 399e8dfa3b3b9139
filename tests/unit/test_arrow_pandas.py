"""pyarrow converts Python values without importing pandas once `core.formats` is imported, and still converts
pandas objects when asked to (core/formats/arrow_pandas.py relies on how pyarrow's lazy pandas shim retries).

Each case runs in a new interpreter: the test process has pandas imported already, which makes the skip a no-op.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.container import ROOT

_CONVERT_WITHOUT_PANDAS = """
import json, sys
import core.formats
import pyarrow as pa, pyarrow.compute as pc
from core.formats.text_types import null_mask
values = pa.array(["1", "", "NULL", None], pa.string())
print(json.dumps({
    "greater": pc.greater(pc.binary_length(values), 1).to_pylist(),
    "nulls": null_mask(values, typed=True).to_pylist(),
    "scalar": pa.scalar(7).as_py(),
    "pandas": "pandas" in sys.modules,
}))
"""

_PANDAS_STILL_CONVERTS = """
import json
import core.formats
import pyarrow as pa
pa.scalar(0)
import pandas as pd
frame = pd.DataFrame({"n": pd.array([1, None], dtype="Int64"), "t": pd.to_datetime(["2020-01-01", "2021-06-30"])})
table = pa.Table.from_pandas(frame, preserve_index=False)
back = table.to_pandas()
print(json.dumps({
    "types": [str(field.type) for field in table.schema],
    "series": str(pa.array(pd.Series([1.5, None])).type),
    "roundtrip": [str(back["n"].dtype), str(back["t"].iloc[1].date())],
}))
"""


def _python(code: str) -> dict:  # type: ignore[type-arg]
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result: dict = json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[type-arg]
    return result


def test_arrow_converts_python_values_without_importing_pandas() -> None:
    result = _python(_CONVERT_WITHOUT_PANDAS)

    assert result == {
        "greater": [False, False, True, None],
        "nulls": [False, True, True, True],
        "scalar": 7,
        "pandas": False,
    }


def test_pandas_objects_still_convert_after_the_skip() -> None:
    result = _python(_PANDAS_STILL_CONVERTS)

    assert result == {"types": ["int64", "timestamp[ns]"], "series": "double", "roundtrip": ["Int64", "2021-06-30"]}
