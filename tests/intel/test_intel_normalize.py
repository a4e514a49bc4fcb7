from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taintline.intel.fastpath import classify_array
from taintline.intel.normalize import (
    classify,
    normalize,
    normalize_domain,
    normalize_ip,
    normalize_url,
    refang,
)
from taintline.model import IndicatorType as T


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("hxxp://evil[.]com/a", "http://evil.com/a"),
        ("hXXps[:]//evil(.)com", "https://evil.com"),
        ("user[@]evil{.}com", "user@evil.com"),
        ("evil[dot]com", "evil.com"),
        ("fxp://files[.]example", "ftp://files.example"),
    ],
)
def test_refang(raw: str, expected: str) -> None:
    assert refang(raw) == expected


def test_hashes_lowercased_and_validated() -> None:
    assert normalize(T.SHA256, "AB" * 32) == (T.SHA256, "ab" * 32)
    assert classify("  " + "F" * 40) == (T.SHA1, "f" * 40)
    with pytest.raises(ValueError, match="64 hex digits"):
        normalize(T.SHA256, "ab" * 20)
    with pytest.raises(ValueError, match="not a hex hash"):
        normalize(T.MD5, "zz" * 16)
    with pytest.raises(ValueError, match="35 digits"):
        classify("a" * 35)


def test_domains_idna_and_trailing_dot() -> None:
    assert normalize_domain("Evil.COM.") == "evil.com"
    assert normalize_domain("Bücher.example") == "xn--bcher-kva.example"
    assert normalize_domain("xn--bcher-kva.example.") == "xn--bcher-kva.example"
    assert normalize_domain("_dmarc.example.org") == "_dmarc.example.org"
    for bad in ("xn--zz-bad-.example", "-bad.example", "a..b", "localhost", "1.2.3"):
        with pytest.raises(ValueError):
            normalize_domain(bad)


def test_ips_and_cidrs() -> None:
    assert normalize_ip("10.1.2.3") == (T.IPV4, "10.1.2.3")
    assert normalize_ip("10.1.2.3/32") == (T.IPV4, "10.1.2.3")
    assert normalize_ip("10.1.2.3/24") == (T.CIDR, "10.1.2.0/24")
    assert normalize_ip("2001:DB8:0:0::1") == (T.IPV6, "2001:db8::1")
    assert normalize_ip("2001:db8::1/128") == (T.IPV6, "2001:db8::1")
    assert normalize_ip("2001:db8::/32") == (T.CIDR, "2001:db8::/32")
    with pytest.raises(ValueError):
        normalize_ip("300.1.1.1")
    with pytest.raises(ValueError):
        normalize(T.IPV4, "2001:db8::1")


def test_url_canonicalisation() -> None:
    assert (
        normalize_url("HTTPS://Evil.COM:443/a%7e%2fb?q=%4a#frag") == "https://evil.com/a~%2Fb?q=J"
    )
    assert normalize_url("http://evil.com:8080") == "http://evil.com:8080/"
    assert normalize_url("http://Bücher.example/x") == "http://xn--bcher-kva.example/x"
    assert normalize_url("http://[2001:DB8::1]:80/") == "http://[2001:db8::1]/"
    assert (
        normalize_url("https://raw.githubusercontent.com/IconStorages/images/main/icon%d.ico")
        == "https://raw.githubusercontent.com/IconStorages/images/main/icon%d.ico"
    )
    with pytest.raises(ValueError):
        normalize_url("evil.com/path")
    with pytest.raises(ValueError):
        normalize_url("http://evil.com:99999/")


def test_classify_types() -> None:
    assert classify("ffmpeg.dll") == (T.FILENAME, "ffmpeg.dll")
    assert classify(r"C:\ProgramData\TPM\winscard.dll")[0] is T.FILENAME
    assert classify("a@Evil[.]com") == (T.EMAIL, "a@evil.com")
    assert classify("sbmsa.wiki") == (T.DOMAIN, "sbmsa.wiki")
    assert classify("hxxps://sbmsa[.]wiki/blog/_insert") == (
        T.URL,
        "https://sbmsa.wiki/blog/_insert",
    )
    with pytest.raises(ValueError, match="not a recognised"):
        classify("hello")


def test_serial_normalisation() -> None:
    assert normalize(T.CERT_SERIAL, "00 85 38 A6 C5 01 8F 50 FC") == (
        T.CERT_SERIAL,
        "8538a6c5018f50fc",
    )
    assert normalize(T.CERT_SERIAL, "0x1B:66") == (T.CERT_SERIAL, "1b66")


FAST_SAMPLES = [
    "ab" * 32,
    "AB" * 20,
    "0123456789abcdefABCDEF0123456789",
    "1.2.3.4",
    "255.255.255.255",
    "01.2.3.4",
    "256.1.1.1",
    "evil.com",
    "EVIL.com",
    "a-b.example.org",
    "ffmpeg.dll",
    "x.exe",
    "https://evil.com/a?b=c",
    "http://Evil.com/",
    "http://evil.com",
    "https://evil.com/%41",
    "https://evil.com:443/a",
    "https://evil.com/a#f",
    "xn--bcher-kva.example",
    "a..b",
    "-a.com",
    "a.b-",
    "example.123",
    "foo",
    "",
    "hxxp://evil.com/",
    "evil[.]com",
]


@pytest.mark.parametrize("value", FAST_SAMPLES)
def test_fast_path_agrees_with_slow_path(value: str) -> None:
    result = classify_array(pa.array([value]))
    fast_type = result.types[0].as_py()
    if fast_type is None:
        return  # slow path decides
    assert classify(value) == (T(fast_type), result.values[0].as_py())


_alphabet = st.sampled_from([*list("abcXYZ019.-/:%_?=[]@ "), "http://", "https://", ".com", "xn--"])


@settings(max_examples=150, deadline=None)
@given(st.lists(_alphabet, max_size=12).map("".join))
def test_fast_path_never_disagrees(value: str) -> None:
    result = classify_array(pa.array([value]))
    fast_type = result.types[0].as_py()
    if fast_type is not None:
        assert classify(value) == (T(fast_type), result.values[0].as_py())
