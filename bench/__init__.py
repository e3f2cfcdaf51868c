"""Benchmarks: each prints `BENCH <name>: ratio=<r> value=<v> <unit> baseline=<b> <unit>`."""
