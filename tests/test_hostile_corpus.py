"""A hostile-input corpus, generated here, run through every command to the end.

Names with rich markup, control characters, bidi overrides, ``..``, 255-byte names and bytes
that are not UTF-8; Zeek logs of every shape the hunt met in the wild (no matchable columns,
a literal ``#separator \\t``, certificates with hostile subjects, garbage lines); an SBOM and
an inventory with hostile names. Every command (``intel add``, ``scan``, ``hunt`` in the
pre-filter and the full read, ``report`` in every format, ``export``, ``import``, ``graph
add``) must finish with one of its documented result codes (0, 1, 2), never an internal
error (3) or a traceback, and the terminal output never carries control or bidi characters.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import orjson
import pytest

from taintline.cli.main import main
from taintline.hunt.synth import FIELDS, write_zeek_json, zeek_header, zeek_line
from taintline.report import FORMATS

T0 = 1680082800.0
PAYLOAD = b"MZ harmless hostile-corpus payload"
DOMAIN = "evil.example"

#: Names as str (what an attacker can put in a member name, a log field, an SBOM).
NAMES = [
    "../a[/]b.dll",
    "[red]hidden[/red]-evil.dll",
    "[link=https://x.example]click[/link].dll",
    "clear\x1b[2J\x1b[Hscreen.dll",
    "bell\x07back\x08cr\rtab\tnl\nname.dll",
    "invoice\u202egpj.exe",
    "isolate\u2067x\u2069zero\u200bwidth\ufeff.dll",
    ":skull: emoji.dll",
    "quote'\"back\\slash.dll",
    "L" * 240 + ".dll",
]
#: Names as bytes on disk: also a name that is not UTF-8.
DISK_NAMES = [
    *(n.replace("/", "_").encode() for n in NAMES),
    b"not-utf8-\xff\xfe\xc3(.dll",
    b"..dotdot.dll",
]
HIDDEN = ("\x1b", "\x07", "\u202e", "\u2067", "\x08")


def _zeek(path: Path, name: str, fields: tuple[str, ...], rows: list[dict[str, object]]) -> None:
    body = "".join(zeek_line(fields, r) + "\n" for r in rows)
    path.write_text(zeek_header(name, fields) + body + "#close\t2023-03-29-11-00-00\n")


def _corpus(root: Path) -> dict[str, Path]:
    files = root / "files"
    files.mkdir(parents=True)
    for raw in DISK_NAMES:
        (Path(os.fsdecode(bytes(files))) / os.fsdecode(raw)).write_bytes(PAYLOAD)
    with zipfile.ZipFile(files / "bundle.zip", "w") as z:
        for name in NAMES:
            z.writestr(name, PAYLOAD)
        z.writestr("nested/../../escape.dll", PAYLOAD)
    logs = root / "logs"
    logs.mkdir()
    # dns.log: hostile queries around a real hit, a garbage line, a literal "#separator \t"
    dns_fields = FIELDS["dns"]
    rows = [
        {
            "ts": T0 + i,
            "uid": f"C{i}",
            "id.orig_h": "10.0.0.1",
            "id.orig_p": 1,
            "id.resp_h": "10.0.0.53",
            "id.resp_p": 53,
            "query": f"{name.replace(chr(9), ' ').replace(chr(10), ' ')}.{DOMAIN}",
        }
        for i, name in enumerate(NAMES)
    ]
    header = zeek_header("dns", dns_fields).replace("#separator \\x09", "#separator \\t")
    body = "".join(zeek_line(dns_fields, r) + "\n" for r in rows)
    (logs / "dns.log").write_text(header + body + "garbage\twithout\tenough\tfields\n")
    # x509.log: hostile subjects naming the indicator; ssl.log carrying one of them
    x509 = [
        {
            "ts": T0 + 50 + i,
            "fingerprint": f"{i:064x}",
            "certificate.subject": f"CN={name.replace(chr(9), ' ').replace(chr(10), ' ')}.{DOMAIN},O=[b]x[/b]",
            "san.dns": f"a.{DOMAIN}",
        }
        for i, name in enumerate(NAMES)
    ]
    _zeek(logs / "x509.log", "x509", FIELDS["x509"], x509)
    _zeek(
        logs / "ssl.log",
        "ssl",
        FIELDS["ssl"],
        [
            {
                "ts": T0 + 60,
                "uid": "CS1",
                "id.orig_h": "10.0.0.2",
                "id.orig_p": 2,
                "id.resp_h": "192.0.2.1",
                "id.resp_p": 443,
                "server_name": f"[red]x[/red].{DOMAIN}",
                "cert_chain_fps": f"{0:064x}",
            }
        ],
    )
    # logs without host/domain/IP columns
    _zeek(logs / "loaded_scripts.log", "loaded_scripts", ("name",), [{"name": "[/]\x1b[2J"}])
    _zeek(
        logs / "capture_loss.log",
        "capture_loss",
        ("ts", "ts_delta", "peer", "gaps", "acks", "percent_lost"),
        [
            {
                "ts": T0,
                "ts_delta": 60.0,
                "peer": "[bold]zeek",
                "gaps": 0,
                "acks": 0,
                "percent_lost": 0.0,
            }
        ],
    )
    _zeek(
        logs / "packet_filter.log",
        "packet_filter",
        ("ts", "node", "filter", "init", "success"),
        [{"ts": T0, "node": "zeek", "filter": "ip or not ip", "init": "T", "success": "T"}],
    )
    # JSON with hostile host names and values, and invalid UTF-8 / broken JSON lines
    write_zeek_json(
        logs / "proxy.json",
        [
            {
                "@timestamp": "2023-03-29T09:41:00Z",
                "host.name": name,
                "url": f"http://{DOMAIN}/{name}",
            }
            for name in NAMES
        ],
    )
    with (logs / "proxy.json").open("ab") as out:
        out.write(b'{"host.name": "\xff\xfe", "url": "http://evil.example/"}\n{broken\n')
    (logs / "[red]odd[\\red]\u202ename.log").write_text("not a log at all\n")
    # SBOM and inventory with hostile names
    sbom = root / "sbom.cdx.json"
    sbom.write_text(
        json.dumps(
            {
                "bomFormat": "CycloneDX",
                "specVersion": "1.5",
                "version": 1,
                "metadata": {
                    "component": {
                        "type": "application",
                        "name": NAMES[1],
                        "version": "1",
                        "bom-ref": "root",
                    }
                },
                "components": [
                    {
                        "type": "library",
                        "name": name,
                        "version": "1.0",
                        "bom-ref": f"c{i}",
                        "purl": f"pkg:generic/x{i}@1.0",
                    }
                    for i, name in enumerate(NAMES)
                ],
                "dependencies": [
                    {"ref": "root", "dependsOn": [f"c{i}" for i in range(len(NAMES))]}
                ],
            }
        )
    )
    inventory = root / "inventory.csv"
    with inventory.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["host", "software", "version", "installed_at"])
        for name in NAMES:
            writer.writerow([name, name, "1.0", "2023-01-01T00:00:00Z"])
    iocs = root / "iocs.txt"
    iocs.write_text(f"{hashlib.sha256(PAYLOAD).hexdigest()}\n{DOMAIN}\n")
    return {"files": files, "logs": logs, "sbom": sbom, "inventory": inventory, "iocs": iocs}


def _run(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    assert code in (0, 1, 2), (args, code, out.err)
    assert "internal error" not in out.err and "Traceback" not in out.err + out.out, args
    return code, out.out, out.err


def _no_hidden(text: str) -> None:
    for ch in HIDDEN:
        assert ch not in text, repr(ch)


def test_every_command_runs_to_the_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAINTLINE_CRASH_DIR", str(tmp_path / "crashes"))
    monkeypatch.chdir(tmp_path)  # short paths: the terminal table does not fold the names
    c = _corpus(Path("corpus"))
    case = "case.duckdb"
    code, out, err = _run(capsys, ["intel", "add", str(c["iocs"]), "--case", case])
    assert code == 0
    code, out, err = _run(
        capsys, ["scan", str(c["files"]), "--case", case, "--workers", "0", "--no-rules"]
    )
    assert code == 1  # the payload's hash, under every hostile name
    _no_hidden(out + err)
    assert "[red]hidden[/red]" in out
    for full_read in ([], ["--full-read"]):
        code, out, err = _run(capsys, ["hunt", str(c["logs"]), "--case", case, *full_read])
        assert code == 1, err
        _no_hidden(out + err)
        assert "10.0.0.1" in out and "10.0.0.2" in out  # the DNS host, the certificate's host
    for fmt in FORMATS:
        code, out, err = _run(capsys, ["report", "--case", case, "--format", fmt])
        assert code == 0
        if fmt == "table":
            _no_hidden(out)
            assert "[red]hidden[/red]" in out
        elif fmt == "jsonl":
            subjects = {orjson.loads(line)["subject"] for line in out.splitlines()}
            assert "corpus/files/bundle.zip!/[red]hidden[/red]-evil.dll" in subjects
            assert "corpus/files/not-utf8-\\xff\\xfe\\xc3(.dll" in subjects
        elif fmt in ("sarif", "stix"):
            json.loads(out)
        elif fmt == "csv":
            assert len(list(csv.reader(io.StringIO(out)))) > 10
        elif fmt == "html":
            assert "<script>" not in out.split("</head>", 1)[1].split("<script", 1)[0]
        else:
            assert out.strip()
    code, out, err = _run(
        capsys, ["graph", "add", str(c["sbom"]), str(c["inventory"]), "--case", case]
    )
    _no_hidden(out + err)
    exported = tmp_path / "case.jsonl"
    code, out, err = _run(capsys, ["export", "--case", case, "-o", str(exported)])
    assert code == 0
    other = str(tmp_path / "other.duckdb")
    code, out, err = _run(capsys, ["import", str(exported), "--case", other])
    assert code == 0, err
    _no_hidden(out + err)
    code, out, err = _run(capsys, ["report", "--case", other, "--format", "table"])
    _no_hidden(out)
    assert "[red]hidden[/red]" in out
    assert not (tmp_path / "crashes").exists()
