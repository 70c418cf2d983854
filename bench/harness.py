"""Timing primitives: paired, interleaved runs of two commands and their medians.

Pairing matters on a shared machine: a burst of load slows both sides of a pair alike, so
the ratio of the medians stays meaningful even when the absolute figures drift.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


class BenchError(Exception):
    """A benchmark could not run: a command failed, or the host lacks what it needs."""


@dataclass
class Result:
    """One line of the report: the subject's samples, the peer's, and their ratio."""

    name: str
    subject: str
    peer: str | None = None
    unit: str = "s"
    subject_samples: list[float] = field(default_factory=list)
    peer_samples: list[float] = field(default_factory=list)
    # CPU time (user + system) of the command and its waited-for children, per sample.
    subject_cpu: list[float] = field(default_factory=list)
    peer_cpu: list[float] = field(default_factory=list)
    skipped: str | None = None
    # Why the benchmark could not finish, such as a donkey command that exited non-zero.
    failed: str | None = None
    note: str | None = None

    @property
    def subject_median(self) -> float | None:
        return statistics.median(self.subject_samples) if self.subject_samples else None

    @property
    def peer_median(self) -> float | None:
        return statistics.median(self.peer_samples) if self.peer_samples else None

    @property
    def ratio(self) -> float | None:
        if not self.subject_samples or not self.peer_samples or not self.peer_median:
            return None
        return self.subject_median / self.peer_median

    @property
    def cpu_ratio(self) -> float | None:
        if not self.subject_cpu or not self.peer_cpu or not statistics.median(self.peer_cpu):
            return None
        return statistics.median(self.subject_cpu) / statistics.median(self.peer_cpu)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "subject": self.subject,
            "peer": self.peer,
            "unit": self.unit,
            "subject_median": self.subject_median,
            "peer_median": self.peer_median,
            "ratio": self.ratio,
            "cpu_ratio": self.cpu_ratio,
            "subject_samples": self.subject_samples,
            "peer_samples": self.peer_samples,
            "subject_cpu": self.subject_cpu,
            "peer_cpu": self.peer_cpu,
            "skipped": self.skipped,
            "failed": self.failed,
            "note": self.note,
        }


def run_command(argv: Sequence[str], env: dict[str, str] | None = None,
                timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Run argv with no input and discarded output; raise BenchError if it fails."""
    try:
        completed = subprocess.run(list(argv), env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{' '.join(argv)} did not finish within {timeout:.0f} s") from None
    if completed.returncode != 0:
        raise BenchError(f"{' '.join(argv)} exited with {completed.returncode}: "
                         f"{last_line(completed.stderr)}")
    return completed


def last_line(output: bytes | str | None) -> str:
    """Return the last non-empty line of a command's output, or '(no output)'."""
    if isinstance(output, bytes):
        output = output.decode(errors="replace")
    lines = [line.strip() for line in (output or "").splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def timed(action: Callable[[], object]) -> float:
    """Return the wall time of action() in seconds."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def timed_with_cpu(action: Callable[[], object]) -> tuple[float, float]:
    """Return the wall time and the children's CPU time of action(), in seconds.

    CPU time counts only processes that were waited for, which is every command that
    run_command or run_many starts, with the children they wait for themselves.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = timed(action)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def paired(result: Result, subject: Callable[[], object], peer: Callable[[], object],
           runs: int, warmup: int) -> None:
    """Time subject and peer alternately (subject, peer, subject, ...) after warm-up runs.

    Appends one wall-time and one CPU-time sample per run to result, in seconds.
    """
    for _ in range(warmup):
        subject()
        peer()
    for _ in range(runs):
        wall, cpu = timed_with_cpu(subject)
        result.subject_samples.append(wall)
        result.subject_cpu.append(cpu)
        wall, cpu = timed_with_cpu(peer)
        result.peer_samples.append(wall)
        result.peer_cpu.append(cpu)


def run_many(commands: Sequence[Sequence[str]], env: dict[str, str] | None,
             parallel: bool) -> None:
    """Run commands one after another, or all at once; raise BenchError if any fails."""
    if not parallel:
        for argv in commands:
            run_command(argv, env)
        return

    processes = [
        (argv, subprocess.Popen(list(argv), env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        for argv in commands
    ]
    failures = []
    for argv, process in processes:
        _, stderr = process.communicate()
        if process.returncode != 0:
            failures.append(f"{' '.join(argv)} exited with {process.returncode}: "
                            f"{last_line(stderr)}")
    if failures:
        raise BenchError(f"{len(failures)} of {len(commands)} parallel runs failed; "
                         f"first: {failures[0]}")
