"""The report: a table on stdout and a JSON file with every sample and the machine."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time

from bench.harness import Result


def machine() -> dict:
    """Describe the host the figures come from: CPUs, CPU model, kernel, Python, peers."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as stream:
            for line in stream:
                if line.startswith("model name"):
                    model = line.partition(":")[2].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "runc": _version(["runc", "--version"]),
        "crun": _version(["crun", "--version"]),
    }


def _version(argv: list[str]) -> str | None:
    try:
        completed = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return completed.stdout.splitlines()[0] if completed.stdout else None


def _format(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "MiB":
        return f"{value:.1f} MiB"
    return f"{value:.3g} {unit}"


def table(results: list[Result]) -> str:
    """Render the results as a fixed-width text table (also valid Markdown)."""
    header = ("benchmark", "donkey", "peer", "peer figure", "ratio", "CPU ratio", "runs")
    rows = []
    for result in results:
        if result.skipped or result.failed:
            status = "FAILED" if result.failed else "skipped"
            rows.append((result.name, status, result.peer or "-", "-", "-", "-", "-"))
            continue
        ratio = f"{result.ratio:.2f}" if result.ratio is not None else "-"
        cpu_ratio = f"{result.cpu_ratio:.2f}" if result.cpu_ratio is not None else "-"
        rows.append((
            result.name,
            _format(result.subject_median, result.unit),
            result.peer or "-",
            _format(result.peer_median, result.unit),
            ratio,
            cpu_ratio,
            str(len(result.subject_samples)),
        ))
    widths = [max(len(row[index]) for row in [header, *rows]) for index in range(len(header))]

    def line(cells) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in
                                 zip(cells, widths, strict=True)) + " |"

    lines = [line(header), "|" + "|".join("-" * (width + 2) for width in widths) + "|"]
    lines.extend(line(row) for row in rows)

    notes = [f"- {result.name}: {_note(result)}" for result in results
             if result.failed or result.skipped or result.note]
    if notes:
        lines.extend(["", *notes])
    return "\n".join(lines)


def _note(result: Result) -> str:
    if result.failed:
        return f"failed: {result.failed}"
    return result.skipped or result.note or ""


def write_json(results: list[Result], directory: str, settings: dict) -> str:
    """Write bench/results/<timestamp>.json and return its path."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, time.strftime("%Y%m%dT%H%M%S") + ".json")
    document = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "settings": settings,
        "results": [result.to_dict() for result in results],
    }
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(document, stream, indent=2)
        stream.write("\n")
    return path
