"""Builders of harmless files for the demo: tiny PE and Mach-O files, a throw-away signing CA,
images with and without trailing data, MSI-like archives and generated releases.

They ship with the package because ``taintline demo`` builds its synthetic case with them
(the scan stage signs a PE and appends random bytes; the verify stage builds two releases).
The tests and benchmarks reuse them; builders that only the tests need live in
``tests/builders``.

Nothing here is malware: the executables only return, and the "hidden" data is random bytes.
"""
