"""The analysers the scan engine runs, as explicit tuples (no registration by import side
effects). Each entry is a module following :mod:`taintline.scan.interface`.

The analyser modules (pe, macho, elf, image, electron) fill these tuples; the engine only
iterates over them.
"""

from __future__ import annotations

from taintline.scan import asar, electron, elf, image, macho, pe, plist, reproducible, signed
from taintline.scan.interface import Analyser, BundleAnalyser

#: Per-file analysers: each has ``NAME``, ``applies(item)`` and ``analyse(item, ctx)``.
ANALYSERS: tuple[Analyser, ...] = (pe, macho, elf, image, reproducible, asar, plist, signed)

#: Bundle analysers: each has ``NAME`` and ``analyse_bundle(root, members, ctx)``.
BUNDLE_ANALYSERS: tuple[BundleAnalyser, ...] = (electron, signed)
