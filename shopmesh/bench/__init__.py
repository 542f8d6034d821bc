"""Benchmarks: scripts that print tables, every comparison measured in one run, interleaved."""
