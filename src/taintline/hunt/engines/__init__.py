"""Hunt engines behind one interface (:mod:`.interface`). Spark is imported only when asked
for: PySpark is an optional extra (``taintline[spark]``)."""

from __future__ import annotations

from taintline.errors import UsageError
from taintline.hunt.engines.interface import Engine, EngineResult, Progress

ENGINE_NAMES: tuple[str, ...] = ("duckdb", "spark")


def get_engine(name: str) -> Engine:
    if name == "duckdb":
        from taintline.hunt.engines.duckdb_engine import DuckDBEngine

        return DuckDBEngine()
    if name == "spark":
        try:
            from taintline.hunt.engines.spark_engine import SparkEngine
        except ImportError as exc:  # pyspark missing
            raise UsageError(
                f"--engine spark needs PySpark and a Java runtime: pip install 'taintline[spark]' ({exc})"
            ) from None
        return SparkEngine()
    raise UsageError(f"unknown engine {name!r}; choose one of {', '.join(ENGINE_NAMES)}")


__all__ = ["ENGINE_NAMES", "Engine", "EngineResult", "Progress", "get_engine"]
