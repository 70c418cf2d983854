"""Kernel matrix: boot Debian kernels in qemu (TCG) and run donkey's integration suite inside.

`python -m vm run` (or `nox -s vm`) builds and caches the guest assets, boots one VM per kernel
and cgroup layout, installs this checkout over SSH, runs pytest in the guest and prints a
pass/fail/skip matrix. See docs/kernel-matrix.md.
"""
