"""One canonical spelling per indicator, so the same fact from two sources is one indicator.

* hashes: lower-case hex, validated by length and alphabet (md5 32, sha1 40, sha256 64);
* domains: lower-case, trailing dot removed, internationalised names IDNA-encoded (``idna``,
  UTS #46); plain ASCII names are checked label by label (``_`` allowed, as seen in real
  infrastructure names) and ``xn--`` labels must decode;
* URLs: scheme and host lower-case, host IDNA-encoded, default port removed, percent-encoding
  normalised (unreserved characters decoded, other escapes upper-case), fragment dropped, an
  empty http(s) path becomes ``/``; no other rewriting (dot segments and query order are kept);
* IPs: ``ipaddress``; a network is a ``cidr`` (host bits cleared), a /32 or /128 a plain IP;
* certificate serials: lower-case hex of the integer, separators and leading zero bytes removed.

Every function raises ``ValueError`` with a one-line reason for a value it cannot accept.
The Arrow fast paths in ``csvtext`` and ``stix`` must agree with these functions on every
value they accept themselves; they hand anything unusual to the functions here.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from urllib.parse import urlsplit, urlunsplit

import idna

from taintline.model import IndicatorType

HASH_LENGTHS: dict[IndicatorType, int] = {
    IndicatorType.MD5: 32,
    IndicatorType.SHA1: 40,
    IndicatorType.SHA256: 64,
}
_HASH_BY_LENGTH = {n: t for t, n in HASH_LENGTHS.items()}
_HEX = re.compile(r"[0-9a-f]+")
_ASCII_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMERIC = re.compile(r"[0-9]+")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21, "ws": 80, "wss": 443}
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")

#: A "domain" whose last label is one of these is taken as a file name (``ffmpeg.dll``).
#: Real TLDs that are also common extensions (``.zip``, ``.mov``) are counted as files here:
#: IOC lists name files far more often than they name hosts under those TLDs.
FILE_EXTENSIONS = frozenset(
    [
        "exe",
        "dll",
        "sys",
        "msi",
        "msp",
        "msu",
        "cab",
        "dmg",
        "pkg",
        "app",
        "dylib",
        "so",
        "ko",
        "elf",
        "bin",
        "dat",
        "tmp",
        "log",
        "txt",
        "rtf",
        "pdf",
        "doc",
        "docx",
        "docm",
        "xls",
        "xlsx",
        "xlsm",
        "ppt",
        "pptx",
        "lnk",
        "js",
        "jse",
        "vbs",
        "vbe",
        "ps1",
        "psm1",
        "bat",
        "cmd",
        "hta",
        "wsf",
        "scr",
        "cpl",
        "ocx",
        "jar",
        "apk",
        "ipa",
        "zip",
        "rar",
        "7z",
        "gz",
        "tgz",
        "tar",
        "xz",
        "bz2",
        "iso",
        "img",
        "vhd",
        "vhdx",
        "ico",
        "png",
        "jpg",
        "jpeg",
        "gif",
        "bmp",
        "svg",
        "json",
        "xml",
        "yml",
        "yaml",
        "ini",
        "cfg",
        "conf",
        "plist",
        "nupkg",
        "py",
        "pyc",
        "sh",
        "php",
        "asp",
        "aspx",
        "jsp",
        "html",
        "htm",
        "chm",
        "one",
        "mst",
        "mov",
    ]
)

# Already-canonical spellings, shared by the Arrow fast path (RE2) and the Python checks below
# (the syntax is valid for both engines). A value matching one of these needs no rewriting.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_RE = rf"^{_OCTET}(?:\.{_OCTET}){{3}}$"
_LABEL_RE = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_TLD_RE = r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_RE = rf"(?:{_LABEL_RE}\.)+{_TLD_RE}"
DOMAIN_RE = rf"^{_HOST_RE}$"
# No '%' (escapes need normalising), no '#' (fragments are dropped), no port, a path present.
URL_RE = rf"^https?://{_HOST_RE}/[A-Za-z0-9._~!$&'()*+,;=:@/?-]*$"
_CANONICAL_IPV4 = re.compile(IPV4_RE)
_CANONICAL_DOMAIN = re.compile(DOMAIN_RE)
_CANONICAL_URL = re.compile(URL_RE)

#: Defanging forms undone by :func:`refang` (applied in this order; matched case-insensitively
#: for the bracketed words).
REFANG_REPLACEMENTS: tuple[tuple[str, str], ...] = (
    ("[://]", "://"),
    ("[:]//", "://"),
    ("[.]", "."),
    ("(.)", "."),
    ("{.}", "."),
    ("[dot]", "."),
    ("(dot)", "."),
    ("{dot}", "."),
    ("[:]", ":"),
    ("[@]", "@"),
    ("[at]", "@"),
    ("(at)", "@"),
    ("[/]", "/"),
)
_REFANG_WORDS = re.compile(r"\[(?:dot|at)\]|\((?:dot|at)\)|\{dot\}", re.IGNORECASE)
_HXXP = re.compile(r"^(hxxps?|hxps?|fxp)(?=://)", re.IGNORECASE)

#: Characters that never belong to an indicator but ride along with copied text: zero-width
#: spaces and joiners, the bidi marks and embeddings (U+200E, U+202A..U+202E, U+2066..U+2069),
#: the word joiner family and the byte-order mark.
INVISIBLE_RE = "[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u00ad]"
INVISIBLE = re.compile(INVISIBLE_RE)


def strip_invisible(text: str) -> str:
    return INVISIBLE.sub("", text) if INVISIBLE.search(text) else text


def refang(text: str) -> str:
    """Undo the usual defanging: ``hxxp``, ``[.]``, ``(.)``, ``[dot]``, ``[:]``, ``[://]``,
    ``[@]``; zero-width and bidi marks are removed first."""
    value = strip_invisible(text).strip()
    if "[" in value or "(" in value or "{" in value:
        if _REFANG_WORDS.search(value):
            value = _REFANG_WORDS.sub(lambda m: "@" if "at" in m.group(0).lower() else ".", value)
        for old, new in REFANG_REPLACEMENTS:
            if old in value:
                value = value.replace(old, new)
    match = _HXXP.match(value)
    if match:
        word = match.group(1).lower()
        fixed = "ftp" if word == "fxp" else word.replace("xx", "tt").replace("hxp", "http")
        value = fixed + value[match.end(1) :]
    return value


def normalize_hash(value: str, type_: IndicatorType | None = None) -> tuple[IndicatorType, str]:
    """Lower-case hex of the right length; ``type_`` ``None`` means "decide by length"."""
    text = value.strip().lower()
    if not _HEX.fullmatch(text):
        raise ValueError(f"not a hex hash: {value!r}")
    if type_ is not None:
        if len(text) != HASH_LENGTHS[type_]:
            raise ValueError(f"{type_} must have {HASH_LENGTHS[type_]} hex digits, got {len(text)}")
        return type_, text
    found = _HASH_BY_LENGTH.get(len(text))
    if found is None:
        raise ValueError(f"hash of {len(text)} hex digits matches no md5/sha1/sha256: {value!r}")
    return found, text


def normalize_domain(value: str) -> str:
    lowered = value.lower()
    if _CANONICAL_DOMAIN.fullmatch(lowered) and len(lowered) <= 253 and "xn--" not in lowered:
        return lowered
    text = value.strip().rstrip(".")
    if not text:
        raise ValueError("empty domain")
    if text.isascii():
        text = text.lower()
        labels = text.split(".")
        for label in labels:
            if not _ASCII_LABEL.fullmatch(label):
                raise ValueError(f"invalid domain label {label!r} in {value!r}")
            if label.startswith("xn--"):
                try:
                    idna.decode(label)
                except idna.IDNAError as exc:
                    raise ValueError(f"invalid IDNA label {label!r}: {exc}") from None
    else:
        try:
            text = idna.encode(text, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise ValueError(f"invalid internationalised domain {value!r}: {exc}") from None
        labels = text.split(".")
    if len(labels) < 2:
        raise ValueError(f"not a domain (no dot): {value!r}")
    if len(text) > 253:
        raise ValueError(f"domain longer than 253 characters: {value[:40]!r}...")
    if _NUMERIC.fullmatch(labels[-1]):
        raise ValueError(f"not a domain (numeric top-level label): {value!r}")
    return text


def normalize_ip(value: str) -> tuple[IndicatorType, str]:
    """An address (``ipv4``/``ipv6``) or a network (``cidr``; /32 and /128 are addresses)."""
    if _CANONICAL_IPV4.fullmatch(value):
        return IndicatorType.IPV4, value
    text = value.strip()
    try:
        if "/" in text:
            network = ipaddress.ip_network(text, strict=False)
            if network.prefixlen == network.max_prefixlen:
                address = network.network_address
            else:
                return IndicatorType.CIDR, str(network)
        else:
            address = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"not an IP address or network: {value!r}") from None
    kind = IndicatorType.IPV4 if address.version == 4 else IndicatorType.IPV6
    return kind, str(address)


def _percent(part: str) -> str:
    def fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    return _PERCENT.sub(fix, part)


def normalize_url(value: str) -> str:
    if _CANONICAL_URL.fullmatch(value) and "xn--" not in value:
        return value
    text = value.strip()
    if not _SCHEME.match(text):
        raise ValueError(f"not a URL (no scheme://): {value!r}")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid URL {value!r}: {exc}") from None
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if not host:
        raise ValueError(f"URL without a host: {value!r}")
    try:
        kind, host = normalize_ip(host)
        if kind is IndicatorType.IPV6:
            host = f"[{host}]"
        elif kind is IndicatorType.CIDR:
            raise ValueError(f"URL host is a network: {value!r}")
    except ValueError:
        host = _url_host(host, value)
    netloc = host
    if port is not None and _DEFAULT_PORTS.get(scheme) != port:
        netloc = f"{host}:{port}"
    if parts.username is not None:
        userinfo = parts.username + (f":{parts.password}" if parts.password is not None else "")
        netloc = f"{userinfo}@{netloc}"
    path = _percent(parts.path)
    if not path and scheme in ("http", "https"):
        path = "/"
    return urlunsplit((scheme, netloc, path, _percent(parts.query), ""))


def _url_host(host: str, value: str) -> str:
    text = host.rstrip(".")
    if "." not in text and text.isascii():
        # A single-label host (intranet name) is valid in a URL though not as a domain IOC.
        if not _ASCII_LABEL.fullmatch(text.lower()):
            raise ValueError(f"invalid URL host {host!r} in {value!r}")
        return text.lower()
    return normalize_domain(text)


def normalize_serial(value: str) -> str:
    text = re.sub(r"[\s:.-]", "", value.strip().lower())
    if text.startswith("0x"):
        text = text[2:]
    if not text or not _HEX.fullmatch(text):
        raise ValueError(f"not a hex certificate serial: {value!r}")
    return text.lstrip("0") or "0"


def normalize(type_: IndicatorType, value: str) -> tuple[IndicatorType, str]:
    """Canonical ``(type, value)``; the type can change (an ``ipv4`` with a /24 is a ``cidr``)."""
    text = value.strip()
    if not text:
        raise ValueError(f"empty {type_} value")
    if type_ in HASH_LENGTHS:
        return normalize_hash(text, type_)
    if type_ is IndicatorType.DOMAIN:
        return type_, normalize_domain(text if _CANONICAL_DOMAIN.fullmatch(text) else refang(text))
    if type_ is IndicatorType.URL:
        return type_, normalize_url(text if _CANONICAL_URL.fullmatch(text) else refang(text))
    if type_ in (IndicatorType.IPV4, IndicatorType.IPV6, IndicatorType.CIDR):
        kind, ip = normalize_ip(refang(text))
        if type_ is not IndicatorType.CIDR and kind is IndicatorType.CIDR:
            return kind, ip
        if type_ is not IndicatorType.CIDR and kind is not type_:
            raise ValueError(f"not an {type_} address: {value!r}")
        return kind, ip
    if type_ is IndicatorType.EMAIL:
        text = refang(text)
        if not _EMAIL.fullmatch(text):
            raise ValueError(f"not an e-mail address: {value!r}")
        local, _, domain = text.rpartition("@")
        return type_, f"{local.lower()}@{normalize_domain(domain)}"
    if type_ is IndicatorType.CERT_SERIAL:
        return type_, normalize_serial(text)
    if type_ is IndicatorType.CERT_THUMBPRINT:
        thumb = re.sub(r"[\s:]", "", text.lower())
        if not _HEX.fullmatch(thumb) or len(thumb) not in (40, 64):
            raise ValueError(f"not a SHA-1/SHA-256 certificate thumbprint: {value!r}")
        return type_, thumb
    if type_ is IndicatorType.EOL:
        return type_, text.lower()
    if type_ is IndicatorType.FILENAME_REGEX:
        return type_, normalize_filename_regex(text)
    # filename, signer, yara, pattern: trimmed, internal whitespace runs kept as they are.
    return type_, text


def normalize_filename_regex(text: str) -> str:
    """A path regex as written (no rewriting), checked to compile with RE2: the scan matches
    it with Arrow's RE2 kernels, which run in linear time whatever the pattern (no ReDoS)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(text) > 4096:
        raise ValueError("regex longer than 4096 characters")
    try:
        pc.match_substring_regex(pa.array([""], pa.string()), text)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        reason = str(exc).removeprefix("Invalid regular expression: ")
        raise ValueError(f"regex RE2 cannot compile ({reason}): {text[:80]!r}") from None
    return text


def classify(value: str) -> tuple[IndicatorType, str]:
    """Decide the type of a bare value (as found in a text IOC list) and normalise it."""
    text = refang(value).strip().strip("\"'")
    if not text:
        raise ValueError("empty value")
    lowered = text.lower()
    if _HEX.fullmatch(lowered) and len(lowered) in _HASH_BY_LENGTH:
        return normalize_hash(lowered)
    if _SCHEME.match(text):
        return IndicatorType.URL, normalize_url(text)
    if ":" in text or text[0].isdigit():
        try:
            return normalize_ip(text)
        except ValueError:
            pass
    if "/" in text and not text.startswith("/") and "\\" not in text and " " not in text:
        host = text.split("/", 1)[0]
        if _is_host(host):
            # A URL written without its scheme (``github.com/owner/repo``): https assumed;
            # the hunt compares URLs without their scheme anyway.
            return IndicatorType.URL, normalize_url("https://" + text)
    if "\\" in text or text.startswith("/") or text.startswith("%"):
        return IndicatorType.FILENAME, text
    if "@" in text and _EMAIL.fullmatch(text):
        return normalize(IndicatorType.EMAIL, text)
    if "." in text and " " not in text:
        extension = lowered.rstrip(".").rsplit(".", 1)[-1]
        if extension in FILE_EXTENSIONS:
            return IndicatorType.FILENAME, text
        try:
            return IndicatorType.DOMAIN, normalize_domain(text)
        except ValueError as exc:
            raise ValueError(f"not a recognised indicator ({exc})") from None
    if _HEX.fullmatch(lowered):
        raise ValueError(f"hex string of {len(lowered)} digits is no md5/sha1/sha256: {value!r}")
    raise ValueError(f"not a recognised indicator: {value[:80]!r}")


def normalize_with_hint(type_: IndicatorType, value: str) -> tuple[IndicatorType, str]:
    """Like :func:`normalize`, but a generic IP type accepts either family (``ip`` -> v4/v6),
    a domain or host name that is an IP address is that IP (feeds do write addresses in
    their "hostname" columns), and a URL without a scheme gets ``https://``."""
    if type_ in (IndicatorType.IPV4, IndicatorType.IPV6):
        return normalize_ip(refang(value))
    if type_ is IndicatorType.DOMAIN:
        text = refang(value)
        if text[:1].isdigit() or ":" in text:
            with contextlib.suppress(ValueError):
                kind, ip = normalize_ip(text)
                if kind is not IndicatorType.CIDR:
                    return kind, ip
    if type_ is IndicatorType.URL:
        text = refang(value).strip().strip("\"'")
        if text and not _SCHEME.match(text):
            if text.startswith("/"):
                raise ValueError(f"URL path without a host: {value[:80]!r}")
            if not _is_host(text.split("/", 1)[0]):
                raise ValueError(f"not a URL (no scheme and no host): {value[:80]!r}")
            return type_, normalize_url("https://" + text)
    return normalize(type_, value)


def _is_host(host: str) -> bool:
    """Whether ``host`` (maybe with ``:port``) is an IP address or a domain name that is not a
    file name (``ffmpeg.dll/x`` is not a URL)."""
    if not host:
        return False
    bare = host
    if host.startswith("["):
        bare = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        bare, _, port = host.partition(":")
        if not port.isdigit():
            return False
    try:
        normalize_ip(bare)
    except ValueError:
        pass
    else:
        return True
    if "." not in bare or bare.rsplit(".", 1)[-1].lower() in FILE_EXTENSIONS:
        return False
    try:
        normalize_domain(bare)
    except ValueError:
        return False
    return True
