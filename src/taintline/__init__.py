"""taintline: supply-chain compromise triage for defenders.

Are we affected, where, since when, and what did we pass downstream?
"""

__version__ = "0.1.0"
