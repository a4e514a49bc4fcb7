"""The Spark connection options that ``hunt`` and ``cascade`` share (``--engine spark``)."""

from __future__ import annotations

from typing import Annotated

import typer

from taintline.sparklocal import ENV_CONF, ENV_MASTER, ENV_REMOTE, SparkSettings, settings_from

SparkMaster = Annotated[
    str | None,
    typer.Option(
        "--spark-master",
        help=f"Spark master URL: local[N], spark://HOST:PORT, yarn, k8s://... (env {ENV_MASTER}).",
        show_default=False,
    ),
]
SparkRemote = Annotated[
    str | None,
    typer.Option(
        "--spark-remote",
        help=f"Spark Connect server: sc://HOST:PORT (env {ENV_REMOTE} or SPARK_REMOTE).",
        show_default=False,
    ),
]
SparkConf = Annotated[
    list[str] | None,
    typer.Option(
        "--spark-conf",
        help=f"KEY=VALUE Spark setting, repeatable (env {ENV_CONF}, ';'-separated).",
        show_default=False,
    ),
]


def spark_settings(master: str | None, remote: str | None, conf: list[str] | None) -> SparkSettings:
    return settings_from(master, remote, conf or ())
