"""Measure the memory of detached containers' monitors (PSS and RSS from smaps_rollup).

Standalone: `sudo python bench/monitor_memory.py [--containers N]`. It starts N detached
busybox containers under a private --root, --data-root and cgroup parent and waits for
their monitors to reach the watch phase. Then it reads /proc/PID/smaps_rollup and counts
the open descriptors of each monitor, prints one JSON object, and removes what it created.

PSS divides shared pages among the processes that map them, so the per-monitor PSS falls
as N grows; RSS does not. Both are printed, with the bare interpreter for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


def _rollup(pid: int) -> dict[str, int]:
    values = {}
    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as stream:
        for line in stream:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                values[parts[0].rstrip(":")] = int(parts[1])
    return values


def _donkey(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "donkey", *args], env=env, text=True,
                          capture_output=True, timeout=120)


def _bare_interpreter() -> dict[str, int]:
    process = subprocess.Popen([sys.executable, "-I", "-S", "-c",
                                "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        time.sleep(0.3)
        return _rollup(process.pid)
    finally:
        process.stdin.close()
        process.wait()


def _in_watch_phase(pid: int) -> bool:
    with open(f"/proc/{pid}/cmdline", "rb") as stream:
        return b"\0watch\0" in stream.read()


def measure(count: int) -> dict:
    workdir = tempfile.mkdtemp(prefix="donkey-monitor-bench-")
    env = dict(os.environ,
               DONKEY_ROOT=os.path.join(workdir, "state"),
               DONKEY_DATA_ROOT=os.path.join(workdir, "data"),
               DONKEY_CGROUP_PARENT=f"donkey/bench-{os.getpid()}",
               PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ids = []
    try:
        for _ in range(count):
            result = _donkey(env, "run", "-d", "sh", "-c", "while true; do sleep 1; done")
            if result.returncode != 0:
                raise SystemExit(f"donkey run -d failed: {result.stderr.strip()}")
            ids.append(result.stdout.strip())

        monitors = []
        for container_id in ids:
            with open(os.path.join(env["DONKEY_ROOT"], container_id, "state.json")) as stream:
                monitors.append(json.load(stream)["monitor_pid"])
        deadline = time.monotonic() + 10
        while not all(_in_watch_phase(pid) for pid in monitors):
            if time.monotonic() > deadline:
                raise SystemExit("monitors did not reach the watch phase within 10 s")
            time.sleep(0.05)
        time.sleep(0.2)

        rollups = [_rollup(pid) for pid in monitors]
        descriptors = [len(os.listdir(f"/proc/{pid}/fd")) for pid in monitors]
        bare = _bare_interpreter()
        return {
            "containers": count,
            "monitor_pss_kib_mean": sum(item["Pss"] for item in rollups) // count,
            "monitor_pss_anon_kib_mean": sum(item.get("Pss_Anon", 0) for item in rollups)
            // count,
            "monitor_rss_kib_max": max(item["Rss"] for item in rollups),
            "monitor_fds_max": max(descriptors),
            "bare_interpreter_rss_kib": bare["Rss"],
            "bare_interpreter_pss_kib": bare["Pss"],
            "python": sys.version.split()[0],
            "kernel": os.uname().release,
        }
    finally:
        for container_id in ids:
            _donkey(env, "rm", "-f", container_id)
        shutil.rmtree(workdir, ignore_errors=True)
        for hierarchy in os.listdir("/sys/fs/cgroup"):
            path = os.path.join("/sys/fs/cgroup", hierarchy, "donkey", f"bench-{os.getpid()}")
            if os.path.isdir(path):
                try:
                    os.rmdir(path)
                except OSError as error:
                    print(f"leaving {path}: {error}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=5,
                        help="number of detached containers to start (default 5)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark starts containers")
    print(json.dumps(measure(args.containers), indent=2))


if __name__ == "__main__":
    main()
