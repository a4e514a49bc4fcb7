"""Where the ``--engine spark`` paths (hunt, cascade) run: a local session by default, a real
cluster (``--spark-master spark://...``, ``yarn``, ``k8s://...``) or a Spark Connect server
(``--spark-remote sc://HOST:PORT``) when asked.

The settings come from the command line or from the environment (``TAINTLINE_SPARK_MASTER``,
``TAINTLINE_SPARK_REMOTE`` and ``TAINTLINE_SPARK_CONF``, the last one ``KEY=VALUE`` pairs
separated by newlines or ``;``); PySpark's own ``SPARK_REMOTE`` is honoured too. A session
that cannot reach its cluster, or whose cluster has no free executor within
``SparkSettings.wait_seconds``, fails with an error naming the URL, and every session this
module starts is stopped when the ``with`` block ends, so nothing is leaked on exit.

PySpark is imported inside the functions: it is an optional extra (``taintline[spark]``).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from taintline.errors import InputError, UsageError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ENV_MASTER = "TAINTLINE_SPARK_MASTER"
ENV_REMOTE = "TAINTLINE_SPARK_REMOTE"
ENV_CONF = "TAINTLINE_SPARK_CONF"

_MASTER_SCHEMES = ("local", "spark://", "yarn", "k8s://", "mesos://")


@dataclass(frozen=True, slots=True)
class SparkSettings:
    """Where to run. Neither ``master`` nor ``remote``: a local session on this machine."""

    #: A classic master URL: ``local[N]``, ``spark://HOST:PORT``, ``yarn``, ``k8s://...``.
    master: str | None = None
    #: A Spark Connect URL: ``sc://HOST:PORT``.
    remote: str | None = None
    #: Extra ``spark.*`` settings, applied on top of the engine's own.
    conf: Mapping[str, str] = field(default_factory=dict)
    #: How long to wait for a first job to be accepted before saying the cluster is busy.
    wait_seconds: float = 120.0

    @property
    def is_local(self) -> bool:
        """True when the session runs in this process's own JVM on this machine."""
        return self.remote is None and (self.master is None or self.master.startswith("local"))

    @property
    def url(self) -> str:
        return self.remote or self.master or "local"

    def __post_init__(self) -> None:
        if self.master and self.remote:
            raise UsageError("give either --spark-master or --spark-remote, not both")
        if self.remote and not self.remote.startswith("sc://"):
            raise UsageError(
                f"--spark-remote must be a Spark Connect URL sc://HOST:PORT, got {self.remote!r}"
            )
        if self.master and not self.master.startswith(_MASTER_SCHEMES):
            raise UsageError(
                f"--spark-master {self.master!r} is not a master URL"
                " (local[N], spark://HOST:PORT, yarn, k8s://...)"
            )


def parse_conf(pairs: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings as a mapping; a pair without ``=`` is a usage error."""
    out: dict[str, str] = {}
    for pair in pairs:
        pair = pair.strip()
        if not pair:
            continue
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--spark-conf wants KEY=VALUE, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def settings_from(
    master: str | None = None,
    remote: str | None = None,
    conf: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> SparkSettings:
    """Command-line values first, then the environment."""
    env = os.environ if environ is None else environ
    if not master and not remote:
        master = env.get(ENV_MASTER) or None
        remote = env.get(ENV_REMOTE) or env.get("SPARK_REMOTE") or None
    env_conf = [p for chunk in env.get(ENV_CONF, "").splitlines() for p in chunk.split(";")]
    merged = parse_conf(env_conf)
    merged.update(parse_conf(conf))
    return SparkSettings(master=master, remote=remote, conf=merged)


def _base_conf(app_conf: Mapping[str, str] | None, cores: int, local: bool) -> dict[str, str]:
    # No web UI and no console progress bars: taintline shows its own progress.
    out = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"}
    if local:
        out["spark.sql.shuffle.partitions"] = str(max(2, cores))
    out.update(app_conf or {})
    return out


def local_session(app: str, cores: int = 2, conf: Mapping[str, str] | None = None) -> SparkSession:
    """A small local session (``local[cores]``, no UI, quiet logs), with the engine's own
    settings in ``conf``."""
    return open_session(app, SparkSettings(master=f"local[{cores}]"), conf, cores)


def open_session(
    app: str,
    settings: SparkSettings | None = None,
    conf: Mapping[str, str] | None = None,
    cores: int = 2,
) -> SparkSession:
    """A session on the configured cluster (see the module doc). Raises
    :class:`~taintline.errors.InputError` naming the URL when it cannot be reached."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise UsageError("the Spark engine needs PySpark: pip install 'taintline[spark]'") from exc

    settings = settings or SparkSettings()
    _check_reachable(settings)
    merged = _base_conf(conf, cores, settings.is_local)
    merged.update(settings.conf)
    try:
        if settings.remote:
            builder = SparkSession.builder.remote(settings.remote)
            # Static settings belong to the server; only session settings are sent.
            session = builder.getOrCreate()
            for key, value in merged.items():
                if key.startswith("spark.sql."):
                    session.conf.set(key, value)
        else:
            builder = SparkSession.builder.master(settings.master or f"local[{cores}]").appName(app)
            for key, value in merged.items():
                builder = builder.config(key, value)
            session = builder.getOrCreate()
            session.sparkContext.setLogLevel("ERROR")
    except Exception as exc:
        raise InputError(settings.url, f"cannot start a Spark session: {_first_line(exc)}") from exc
    if not settings.is_local:
        _probe(session, settings)
    return session


def _check_reachable(settings: SparkSettings, timeout: float = 10.0) -> None:
    """A ``sc://`` or ``spark://`` URL whose port does not answer fails at once, naming it
    (the clients would otherwise retry for minutes)."""
    url = settings.remote or settings.master or ""
    match = re.match(r"^(?:sc|spark)://\[?([^\]/:]+)\]?:(\d+)", url)
    if match is None:
        return
    host, port = match.group(1), int(match.group(2))
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise InputError(url, f"cannot reach the Spark cluster: {exc.strerror or exc}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _probe(session: SparkSession, settings: SparkSettings) -> None:
    """Run a one-row job; a cluster with no free executor accepts it never, so wait at most
    ``settings.wait_seconds`` and then say so (and cancel the job)."""
    box: dict[str, Any] = {}

    def job() -> None:
        try:
            box["rows"] = session.range(1).collect()
        except Exception as exc:
            box["error"] = exc

    worker = threading.Thread(target=job, daemon=True)
    worker.start()
    worker.join(settings.wait_seconds)
    if worker.is_alive():
        _cancel(session)
        stop(session)
        raise InputError(
            settings.url,
            f"the Spark cluster accepted no job within {settings.wait_seconds:.0f} s:"
            " no free executors (check its workers and cores)",
        )
    if "error" in box:
        stop(session)
        raise InputError(
            settings.url, f"the Spark cluster failed a test job: {_first_line(box['error'])}"
        )


def _cancel(session: SparkSession) -> None:
    try:
        if is_connect(session):
            session.interruptAll()
        else:
            session.sparkContext.cancelAllJobs()
    except Exception:  # noqa: S110 - best effort while giving up on the cluster
        pass


def is_connect(session: Any) -> bool:
    """True for a Spark Connect session (no SparkContext, no RDD API)."""
    return type(session).__module__.startswith("pyspark.sql.connect")


def stop(session: Any) -> None:
    # Stopping a broken session must not hide the error that broke it.
    with contextlib.suppress(Exception):
        session.stop()


@contextmanager
def session_scope(
    app: str,
    settings: SparkSettings | None,
    conf: Mapping[str, str] | None = None,
    cores: int = 2,
    given: SparkSession | None = None,
) -> Iterator[SparkSession]:
    """``given`` when the caller owns a session; else the session for ``settings``, stopped
    at the end if this call started it.

    A classic session this process already runs (one SparkContext per JVM) is reused when it
    is on the master asked for, and left running for its owner; a different master is an
    error naming both, never a silent run on the wrong cluster."""
    if given is not None:
        yield given
        return
    existing = running_master()
    wanted = settings or SparkSettings()
    if existing is not None and wanted.remote is None:
        asked = wanted.master or f"local[{cores}]"
        if not _same_master(existing, asked):
            raise InputError(
                wanted.url,
                f"this process already runs a Spark session on {existing}; stop it before"
                f" starting one on {asked}",
            )
    session = open_session(app, settings, conf, cores)
    owned = existing is None or wanted.remote is not None
    try:
        yield session
    finally:
        if owned:
            stop(session)


def running_master() -> str | None:
    """The master of the classic SparkContext running in this process, if any."""
    try:
        from pyspark import SparkContext
    except ImportError:  # pragma: no cover - depends on the install
        return None
    context = SparkContext._active_spark_context
    if context is None or getattr(context, "_jsc", None) is None:
        return None
    return str(context.master)


def _same_master(running: str, asked: str) -> bool:
    """``local[2]`` and ``local[*]`` are both this machine: a local request reuses a local
    session whatever its thread count."""
    if running.startswith("local") and asked.startswith("local"):
        return True
    return running == asked
