"""Builders for harmless test fixtures: tiny PE, Mach-O and ELF files, a throw-away signing CA,
images with and without trailing data. Reused by the tests, the demo and the benchmarks.

Nothing here is malware: the executables only return, and the "hidden" data is random bytes.
"""
