"""The run pipeline's store wrapper retries every call of the port: a method it lacks would pass through to the
SQL store unretried (`__getattr__`), and a metadata outage in it would fail the run at once."""

from __future__ import annotations

import inspect

from app.db.retrying import RetryingStore
from core.ports import MetadataStore


def test_every_metadata_store_method_is_wrapped() -> None:
    port = {name for name, _ in inspect.getmembers(MetadataStore, inspect.isfunction) if not name.startswith("_")}
    missing = sorted(name for name in port if name not in vars(RetryingStore))
    assert not missing, f"RetryingStore does not retry {missing}"
