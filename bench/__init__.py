"""Benchmarks of donkey against runc (and crun when the host allows it); see docs/benchmarks.md."""
