"""Benchmarks answering an architecture's metric without training: published tables and a toy."""

from rlnas.benchmarks.tabular import HiddenTargetBenchmark, TabularBenchmark, resolve_table_path

__all__ = ["HiddenTargetBenchmark", "TabularBenchmark", "resolve_table_path"]
