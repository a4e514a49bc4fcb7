"""End-of-life exposure: which hosts (and releases) run retired software, since when, and
what was installed after its end. See ``docs/eol.md``."""
