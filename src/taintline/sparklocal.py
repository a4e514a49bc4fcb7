"""The local Spark session the ``--engine spark`` paths (hunt, cascade) run on.

PySpark is imported inside the function: it is an optional extra (``taintline[spark]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def local_session(app: str, cores: int = 2, conf: Mapping[str, str] | None = None) -> SparkSession:
    """A small local session (``local[cores]``, no UI, two shuffle partitions, quiet logs),
    with the engine's own settings in ``conf``."""
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName(app)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
    )
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session
