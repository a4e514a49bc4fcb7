"""Builders of harmless test inputs that the demo does not need (ELF files, endoflife.date
product files, SBOMs in every generator's shape). The builders the demo uses stay in
:mod:`taintline.testing`. Benchmarks import these from the repository checkout."""
