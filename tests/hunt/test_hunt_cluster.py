"""The hunt and the cascade on a real Spark cluster: a standalone master with one worker and a
Spark Connect server on 127.0.0.1, started by ``.ci/run`` (``TAINTLINE_TEST_SPARK_MASTER``,
``TAINTLINE_TEST_SPARK_REMOTE``). Every run goes through the CLI in a subprocess, as a user
runs it, and is compared with the DuckDB / NumPy engines on the same data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
from tests.hunt.conftest import INDICATORS, make_logs

from taintline.case import Case
from taintline.errors import InputError, UsageError
from taintline.hunt.engines.spark_cluster import is_uri, needs_cluster, to_uri
from taintline.hunt.model import Field, HuntOptions
from taintline.hunt.service import run_hunt, uses_cluster
from taintline.model import Edge, EdgeKind, NodeKind, NodeRef
from taintline.sparklocal import SparkSettings, open_session, settings_from

MASTER = os.environ.get("TAINTLINE_TEST_SPARK_MASTER")
REMOTE = os.environ.get("TAINTLINE_TEST_SPARK_REMOTE")
REQUIRED = os.environ.get("TAINTLINE_REQUIRE_SPARK_CLUSTER") == "1"
FIELD_MAP = "query=dns.question.name"


def _cluster(kind: str) -> list[str]:
    url = MASTER if kind == "master" else REMOTE
    if not url:
        if REQUIRED:
            pytest.fail(f"no Spark {kind} given although the cluster tests are required")
        pytest.skip(f"no Spark {kind}: set TAINTLINE_TEST_SPARK_{kind.upper()} (.ci/run does)")
    return [f"--spark-{kind}", url, "--spark-conf", "spark.sql.shuffle.partitions=2"]


# -- settings (no cluster needed) ----------------------------------------------------------
def test_settings_from_options_and_environment() -> None:
    env = {
        "TAINTLINE_SPARK_MASTER": "spark://10.0.0.1:7077",
        "TAINTLINE_SPARK_CONF": "spark.a=1;spark.b=two\nspark.c=3",
    }
    s = settings_from(environ=env)
    assert s.master == "spark://10.0.0.1:7077" and s.remote is None and not s.is_local
    assert dict(s.conf) == {"spark.a": "1", "spark.b": "two", "spark.c": "3"}
    # The command line wins over the environment, for the URL and for each key.
    s = settings_from(remote="sc://h:15002", conf=["spark.a=9"], environ=env)
    assert s.remote == "sc://h:15002" and s.master is None and s.conf["spark.a"] == "9"
    assert settings_from(environ={"SPARK_REMOTE": "sc://x:1"}).remote == "sc://x:1"
    assert settings_from(environ={}).is_local


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"master": "spark://a:1", "remote": "sc://b:2"}, "not both"),
        ({"remote": "http://b:2"}, "sc://HOST:PORT"),
        ({"master": "nowhere:7077"}, "not a master URL"),
    ],
)
def test_bad_settings_are_usage_errors(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        SparkSettings(**kwargs)
    with pytest.raises(UsageError, match="KEY=VALUE"):
        settings_from(conf=["spark.sql.shuffle.partitions"])


def test_which_inputs_need_the_cluster(tmp_path: Path) -> None:
    assert is_uri("hdfs://nn/logs/conn.log") and is_uri("file:///tmp/x")
    assert not is_uri("C:\\logs\\conn.log") and not is_uri("logs/conn.log")
    assert needs_cluster(["logs/*.log.gz"]) and needs_cluster(["s3a://b/zeek/"])
    assert needs_cluster(["zeek/conn.parquet"]) and not needs_cluster([str(tmp_path)])
    assert to_uri("s3a://b/k") == "s3a://b/k"
    assert to_uri(str(tmp_path / "a*.log")) == f"file://{tmp_path}/a*.log"
    local = HuntOptions(engine="spark")
    assert not uses_cluster([tmp_path], local)
    assert uses_cluster(["hdfs://nn/x"], local)
    remote = HuntOptions(engine="spark", spark=SparkSettings(remote="sc://h:1"))
    assert uses_cluster([tmp_path], remote)
    assert not uses_cluster(["hdfs://nn/x"], HuntOptions(engine="duckdb"))


@pytest.mark.spark
def test_an_unreachable_cluster_names_its_url() -> None:
    pytest.importorskip("pyspark.sql.connect.session")
    settings = SparkSettings(remote="sc://127.0.0.1:9", wait_seconds=60)
    with pytest.raises(InputError) as info:
        open_session("t", settings)
    assert "sc://127.0.0.1:9" in str(info.value)


# -- the hunt on the cluster -----------------------------------------------------------------
def _case(path: Path) -> Path:
    with Case(path) as c:
        c.add_indicators(INDICATORS)
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "taintline", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    return proc


def _sightings(case: Path) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(case), read_only=True)
    try:
        return con.execute(
            "SELECT host, indicator_type, indicator_value, first_seen, last_seen, count, fields"
            " FROM hunt_sightings ORDER BY ALL"
        ).fetchall()
    finally:
        con.close()


def _files(case: Path) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(case), read_only=True)
    try:
        rows = con.execute(
            "SELECT path, lines, records, comments, blank, garbage, hits FROM hunt_files"
        ).fetchall()
    finally:
        con.close()
    return sorted((Path(str(r[0]).split(":", 1)[-1]).name, *r[1:]) for r in rows)


def _reference(tmp_path: Path, folder: Path) -> tuple[list[tuple[object, ...]], list[object]]:
    case = _case(tmp_path / "duck.duckdb")
    with Case(case) as c:
        run_hunt(c, [folder], HuntOptions(field_map={Field.DOMAIN: "dns.question.name"}))
    return _sightings(case), _files(case)


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("clusterlogs") / "logs"
    make_logs(folder)
    with (folder / "dns.log").open("a") as handle:
        handle.write("not a record\n\n")
    return folder


@pytest.mark.spark
@pytest.mark.parametrize("kind", ["master", "remote"])
def test_hunt_on_the_cluster_equals_duckdb(kind: str, logs: Path, tmp_path: Path) -> None:
    """The standalone master reads the folder; the Connect server gets the same logs as a
    ``file://`` URI with a glob, a ``file://`` URI of one file and two plain paths (one hunt
    each: every cluster application costs tens of seconds of start-up in CI)."""
    conn = _cluster(kind)
    want_sightings, want_files = _reference(tmp_path, logs)
    case = _case(tmp_path / "spark.duckdb")
    if kind == "master":
        inputs = [str(logs)]
    else:
        inputs = [
            f"file://{logs}/*.log*",
            f"file://{logs}/ecs.jsonl",
            str(logs / "proxy.csv"),
            str(logs / "ssl.json"),
        ]
    _cli("hunt", "--engine", "spark", *conn, "--map", FIELD_MAP, "--case", str(case), *inputs)
    assert len(want_sightings) == 13
    assert _sightings(case) == want_sightings
    assert _files(case) == want_files


def _zeek_to_parquet(log: Path, target: Path, underscores: bool) -> None:
    """A Zeek TSV log as a converter pipeline stores it: one Parquet file, typed ts."""
    lines = log.read_text().splitlines()
    fields = next(ln for ln in lines if ln.startswith("#fields")).split("\t")[1:]
    rows = [ln.split("\t") for ln in lines if ln and not ln.startswith("#")]
    con = duckdb.connect()
    cols = [f.replace(".", "_") if underscores else f for f in fields]
    con.execute("CREATE TABLE t (" + ", ".join(f'"{c}" VARCHAR' for c in cols) + ")")
    con.executemany(
        "INSERT INTO t VALUES (" + ", ".join("?" for _ in cols) + ")",
        [[None if v == "-" else v for v in r] for r in rows],
    )
    con.execute(
        f"COPY (SELECT * REPLACE (to_timestamp(CAST(ts AS DOUBLE)) AS ts) FROM t)"
        f" TO '{target}' (FORMAT parquet)"
    )
    con.close()


@pytest.mark.spark
def test_hunt_reads_parquet_tables(logs: Path, tmp_path: Path) -> None:
    conn = _cluster("remote")
    only = tmp_path / "tsv"
    only.mkdir()
    for name in ("conn.log", "http.log"):
        shutil.copy(logs / name, only / name)
    want, _ = _reference(tmp_path, only)
    tables = tmp_path / "parquet"
    tables.mkdir()
    _zeek_to_parquet(only / "conn.log", tables / "conn.parquet", underscores=True)
    _zeek_to_parquet(only / "http.log", tables / "http.parquet", underscores=False)
    case = _case(tmp_path / "spark.duckdb")
    _cli(
        "hunt",
        "--engine",
        "spark",
        *conn,
        "--case",
        str(case),
        str(tables / "conn.parquet"),
        str(tables / "http.parquet"),
    )
    got = _sightings(case)
    assert want, "the logs must give sightings"
    # Field names may be spelled the converter's way (id_orig_h); the facts are the same.
    strip = [(h, t, v, f, lst, n) for h, t, v, f, lst, n, _ in got]
    assert strip == [(h, t, v, f, lst, n) for h, t, v, f, lst, n, _ in want]


# -- the cascade on the cluster, from Parquet --------------------------------------------------
def _reached(case: Path, run_id: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(case), read_only=True)
    try:
        return con.execute(
            "SELECT * EXCLUDE (run_id) FROM cascade_reached WHERE run_id = ? ORDER BY kind, key",
            [run_id],
        ).fetchall()
    finally:
        con.close()


def _runs(case: Path) -> list[tuple[str, str]]:
    con = duckdb.connect(str(case), read_only=True)
    try:
        return con.execute("SELECT run_id, engine FROM cascade_runs ORDER BY started").fetchall()
    finally:
        con.close()


@pytest.mark.spark
@pytest.mark.parametrize("kind", ["master", "remote"])
def test_cascade_from_parquet_on_the_cluster_equals_numpy(kind: str, tmp_path: Path) -> None:
    from taintline.cli.main import main
    from taintline.demo import graph as demo
    from taintline.graph.service import run_cascade
    from taintline.graph.store import parse_seed

    conn = _cluster(kind)
    files = demo.write_story(tmp_path / "in")
    case = tmp_path / "case.duckdb"
    assert main(["graph", "add", *map(str, files.all()), "--case", str(case)]) == 0
    seed = f"artifact:{demo.XTRADER_SHA}@2022-02-03T10:00:00Z"
    with Case(case) as c:
        c.add_edges(_tie_edges(NodeRef(NodeKind.ARTIFACT, demo.XTRADER_SHA)))
        numpy_run = run_cascade(c, [parse_seed(seed)], record_findings=False).run_id
    exported = tmp_path / "export"
    assert main(["export", "--format", "parquet", "-o", str(exported), "--case", str(case)]) == 0
    out = tmp_path / "reached.parquet"
    _cli(
        "cascade",
        "--engine",
        "spark",
        *conn,
        "--graph-parquet",
        f"file://{exported / 'edges.parquet'}",
        "--output-parquet",
        f"file://{out}",
        "--seed",
        seed,
        "--case",
        str(case),
    )
    runs = _runs(case)
    assert [e for _, e in runs] == ["numpy", "spark-parquet"]
    want = _reached(case, numpy_run)
    assert len(want) == 17 + 9
    assert _reached(case, runs[-1][0]) == want
    # The tie-breaks went the NumPy engine's way: fewest facts, then the highest confidence,
    # then the case's edge order (kind, key, parent, edge columns as in _reached's rows).
    why = {r[1]: (r[4], r[3], r[6], r[7], r[14]) for r in want if r[1].startswith("tie-")}
    assert why["tie-h3"] == (2, 0.8, "host", "tie-h1", None)
    assert why["tie-v"] == (2, 0.8, "host", "tie-h1", None)
    assert why["tie-w"][:2] == (1, 1.0) and why["tie-w"][4] is not None
    assert why["tie-y"] == (2, 0.8 * 0.8, "host", "tie-g", None)
    # The same rows were written where the cluster was told to write them.
    written = duckdb.sql(f"SELECT count(*) FROM read_parquet('{out}/*.parquet')").fetchall()
    assert written == [(17 + 9,)]


def _tie_edges(x: NodeRef) -> list[Edge]:
    """Facts from the seed ``x`` where several tight parents compete for each node (the
    shape of ``tests/graph/graphs.py``'s ``TIES``, with the case's edge order)."""
    from datetime import UTC, datetime

    def host(key: str) -> NodeRef:
        return NodeRef(NodeKind.HOST, key)

    build, art = NodeRef(NodeKind.BUILD, "tie-b"), NodeRef(NodeKind.ARTIFACT, "tie-a")
    inst, conn = EdgeKind.INSTALLED_ON, EdgeKind.CONNECTED_TO
    return [
        Edge(inst, x, host("tie-h1"), "ties"),
        Edge(inst, x, host("tie-h2"), "ties"),
        Edge(conn, host("tie-h2"), host("tie-h3"), "ties"),  # equal: tie-h1 comes first
        Edge(conn, host("tie-h1"), host("tie-h3"), "ties"),
        Edge(EdgeKind.BUILT_ON, build, host("tie-h1"), "ties"),  # a longer path to tie-v ...
        Edge(EdgeKind.PRODUCED, build, art, "ties"),
        Edge(inst, art, host("tie-v"), "ties"),  # ... of higher confidence loses
        Edge(conn, host("tie-h1"), host("tie-v"), "ties"),
        Edge(inst, x, host("tie-w"), "ties", confidence=0.5),  # first in edge order, 0.5
        Edge(inst, x, host("tie-w"), "ties", valid_from=datetime(2020, 1, 1, tzinfo=UTC)),
        Edge(inst, x, host("tie-g"), "ties", confidence=0.8),
        Edge(conn, host("tie-h1"), host("tie-y"), "ties", confidence=0.8),  # 1.0 * 0.64 ...
        Edge(conn, host("tie-g"), host("tie-y"), "ties"),  # ... == 0.8 * 0.8: tie-g is first
    ]


@pytest.mark.spark
def test_cascade_on_a_table_that_is_not_an_edge_table(tmp_path: Path) -> None:
    conn = _cluster("remote")
    bogus = tmp_path / "bogus.parquet"
    duckdb.sql(f"COPY (SELECT 1 AS a) TO '{bogus}' (FORMAT parquet)")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "taintline",
            "cascade",
            "--engine",
            "spark",
            *conn,
            "--graph-parquet",
            str(bogus),
            "--seed",
            "host:a",
            "--case",
            str(tmp_path / "c.duckdb"),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 2
    said = " ".join(proc.stderr.split())  # the terminal may wrap the message
    assert "not an edge table" in said and "Traceback" not in said


@pytest.mark.spark
@pytest.mark.xdist_group("spark")
def test_an_engine_leaves_a_session_it_did_not_start_running(spark: Any, tmp_path: Path) -> None:
    """The CLI's cascade in a process that already runs a local session reuses it and does
    not stop it (a stopped shared session broke every later Spark test); a cluster URL in
    that process is refused by name, never run on the local session instead."""
    from taintline.cli.main import main
    from taintline.demo import graph as demo
    from taintline.sparklocal import running_master, session_scope

    files = demo.write_story(tmp_path / "in")
    case = tmp_path / "case.duckdb"
    assert main(["graph", "add", *map(str, files.all()), "--case", str(case)]) == 0
    seed = f"artifact:{demo.XTRADER_SHA}@2022-02-03T10:00:00Z"
    assert main(["cascade", "--engine", "spark", "--seed", seed, "--case", str(case)]) in (0, 1)
    assert running_master() is not None
    assert spark.range(3).count() == 3
    with (
        pytest.raises(InputError, match="already runs a Spark session"),
        session_scope("t", SparkSettings(master="spark://127.0.0.1:7077")),
    ):
        pass
