"""The case's time-aware graph: ingestion, cascade propagation and downstream notices."""

from taintline.graph.store import report_rows

__all__ = ["report_rows"]
