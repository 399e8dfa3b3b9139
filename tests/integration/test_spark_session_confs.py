"""The settings every Spark Connect session of the product carries, on a real Spark Connect server."""

from __future__ import annotations

import logging

import pytest

from core.engines.spark import ClusterTarget, connect_session
from core.engines.spark import session as session_module
from tests.spark_server import spark_server

pytestmark = pytest.mark.slow


def _target() -> ClusterTarget:
    server = spark_server()
    return ClusterTarget("test", server.url, token=server.token)


def test_a_session_keeps_generated_code_within_what_the_jvm_compiles() -> None:
    spark = connect_session(_target())
    try:
        assert spark.conf.get("spark.sql.codegen.hugeMethodLimit") == "8000"
    finally:
        spark.stop()


def test_a_session_reads_and_writes_in_utc_without_variable_substitution() -> None:
    """The test server's own default zone is America/New_York (tests/spark_server.py)."""
    spark = connect_session(_target())
    try:
        assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
        assert spark.sql("select '${spark.app.name}' as v").collect()[0]["v"] == "${spark.app.name}"
    finally:
        spark.stop()


def test_a_cluster_that_refuses_a_setting_is_used_without_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A static conf cannot be set on a running server: a real refusal, as a managed service gives for its own."""
    refused = {"spark.sql.warehouse.dir": "/nowhere", **session_module._HUGE_METHOD_LIMIT}
    monkeypatch.setattr(session_module, "_HUGE_METHOD_LIMIT", refused)
    with caplog.at_level(logging.INFO, logger=session_module.__name__):
        spark = connect_session(_target())
    try:
        assert spark.sql("select 1 as x").collect()[0]["x"] == 1
        assert spark.conf.get("spark.sql.codegen.hugeMethodLimit") == "8000"  # the rest are still set
        assert "refused spark.sql.warehouse.dir" in caplog.text
    finally:
        spark.stop()


def test_a_dead_cluster_is_not_taken_for_a_refused_setting() -> None:
    from tests.services import free_port

    with pytest.raises(Exception) as caught:
        connect_session(ClusterTarget("dead", f"sc://localhost:{free_port()}"))
    assert session_module.is_unreachable(caught.value)
