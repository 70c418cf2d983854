"""The benchmarks: each function returns Results and leaves nothing behind in the sandbox."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from bench import memory
from bench.harness import BenchError, Result, last_line, paired, run_command, run_many
from bench.sandbox import Sandbox

TRUE = ("busybox", "true")
LIMITS = ("-m", "100m", "--cpu-shares", "512")


def start_to_exit(box: Sandbox, runs: int, warmup: int) -> list[Result]:
    """`donkey run --rm busybox true` against `runc run` and `crun run` of the same rootfs."""
    results = []
    donkey = box.donkey_command("run", "--rm", *TRUE)

    def run_donkey() -> None:
        run_command(donkey, box.env)

    def run_peer(runtime: str):
        # Each run needs its own id and bundle; write them all before the clock starts.
        commands = [box.oci_run_command(runtime, box.unique_id(runtime))
                    for _ in range(runs + warmup)]

        def action() -> None:
            run_command(commands.pop())
        return action

    # The first donkey run builds the busybox image that the bundles copy.
    run_donkey()
    result = Result("start-to-exit, true", "donkey run --rm busybox true", "runc run")
    if shutil.which("runc") is None:
        result.skipped = "runc is not installed: apt-get install runc"
    else:
        paired(result, run_donkey, run_peer("runc"), runs, warmup)
    results.append(result)

    crun = Result("start-to-exit, true (crun)", "donkey run --rm busybox true", "crun run")
    crun_error = _try_runtime(box, "crun")
    if crun_error is not None:
        crun.skipped = crun_error
    else:
        paired(crun, run_donkey, run_peer("crun"), runs, warmup)
    results.append(crun)
    return results


def _try_runtime(box: Sandbox, runtime: str) -> str | None:
    """Run one container with runtime; return why it cannot be benchmarked, or None."""
    if shutil.which(runtime) is None:
        return f"{runtime} is not installed: apt-get install {runtime}"
    command = box.oci_run_command(runtime, box.unique_id(runtime))
    completed = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True)
    if completed.returncode != 0:
        return f"{runtime} run failed on this host: {last_line(completed.stderr)}"
    return None


def cgroup_cost(box: Sandbox, runs: int, warmup: int) -> list[Result]:
    """`donkey run` with a memory limit and CPU shares against the same run without."""
    with_limits = box.donkey_command("run", "--rm", *LIMITS, *TRUE)
    without = box.donkey_command("run", "--rm", *TRUE)
    result = Result("cgroup limits cost", "donkey run --rm -m 100m --cpu-shares 512",
                    "donkey run --rm (no limits)")
    paired(result, lambda: run_command(with_limits, box.env),
           lambda: run_command(without, box.env), runs, warmup)
    return [result]


def batches(box: Sandbox, sequential: int, parallel: int, rounds: int) -> list[Result]:
    """Wall time of many containers, one after another and all at once, against runc."""
    results = []
    for count, at_once in ((sequential, False), (parallel, True)):
        mode = "at once" if at_once else "one after another"
        result = Result(f"{count} containers {mode}", f"{count} x donkey run --rm true",
                        f"{count} x runc run")

        donkey = [box.donkey_command("run", "--rm", *TRUE) for _ in range(count)]
        # Bundles are written before the clock starts: one batch of ids for each round.
        runc_batches = [[box.oci_run_command("runc", box.unique_id("runc")) for _ in range(count)]
                        for _ in range(rounds)]

        def run_donkey_batch(donkey=donkey, at_once=at_once) -> None:
            run_many(donkey, box.env, at_once)

        def run_runc_batch(batches=runc_batches, at_once=at_once) -> None:
            run_many(batches.pop(), None, at_once)

        try:
            paired(result, run_donkey_batch, run_runc_batch, rounds, warmup=0)
        except BenchError as error:
            result.failed = str(error)
        results.append(result)
    return results


def oci_cycle(box: Sandbox) -> list[Result]:
    """Time the create, start and delete calls that containerd makes, against runc."""
    result = Result("create/start/delete cycle", "donkey create + start + delete",
                    "runc create + start + delete")
    if not has_command(box, "create"):
        # NOTE: donkey has no OCI face (create, start, delete on a bundle) yet.
        result.skipped = "donkey has no OCI create/start/delete commands yet"
    else:
        result.failed = "the OCI cycle benchmark is not written yet"
    return [result]


def image_unpack() -> list[Result]:
    result = Result("image unpack", "donkey pull", None)
    result.skipped = "not applicable: donkey has no registry pull yet"
    return [result]


def has_command(box: Sandbox, name: str) -> bool:
    """Tell whether this donkey build has the subcommand name."""
    completed = subprocess.run(box.donkey_command(name, "--help"), env=box.env,
                               capture_output=True)
    return completed.returncode == 0


def check_clean(box: Sandbox) -> None:
    """Raise BenchError if a benchmark left a container cgroup behind."""
    leftovers = box.leftover_cgroups()
    if leftovers:
        raise BenchError(f"{len(leftovers)} container cgroups were left behind, such as "
                         f"{leftovers[0]}: a run did not clean up after itself")



def ps_stopped(box: Sandbox, count: int, runs: int) -> list[Result]:
    """`donkey ps -a` with count stopped containers on disk, against an empty state root."""
    result = Result(f"ps -a, {count} stopped", f"donkey ps -a ({count} stopped)",
                    "donkey ps -a (none)")
    if not has_command(box, "ps"):
        result.skipped = "donkey has no ps command yet"
        return [result]

    # Real runs, several at a time, so that the state is whatever donkey writes.
    at_once = max(2, (os.cpu_count() or 1) * 2)
    remaining = count
    while remaining > 0:
        batch = min(at_once, remaining)
        run_many([box.donkey_command("run", *TRUE) for _ in range(batch)], box.env,
                 parallel=True)
        remaining -= batch

    empty_env = dict(box.env, DONKEY_ROOT=os.path.join(box.directory, "empty-state"))
    ps = box.donkey_command("ps", "-a")
    paired(result, lambda: run_command(ps, box.env), lambda: run_command(ps, empty_env),
           runs, warmup=1)

    # `donkey run` reads the state of every container (for names and leftover --rm
    # containers), so its start time grows with the containers on disk.
    crowded = Result(f"start-to-exit, {count} stopped", f"donkey run --rm true ({count} stopped)",
                     "donkey run --rm true (none)")
    start = box.donkey_command("run", "--rm", *TRUE)
    paired(crowded, lambda: run_command(start, box.env), lambda: run_command(start, empty_env),
           runs, warmup=1)
    return [result, crowded]


def resident_memory(box: Sandbox) -> list[Result]:
    """PSS of donkey's processes beside a detached container, against containerd's shim."""
    result = Result("resident memory, 1 detached", "donkey processes (PSS)",
                    "containerd-shim-runc-v2 + runc (PSS)", unit="MiB")
    completed = subprocess.run(box.donkey_command("run", "-d", "busybox", "sleep", "300"),
                               env=box.env, stdin=subprocess.DEVNULL, capture_output=True,
                               text=True)
    if completed.returncode != 0:
        result.skipped = f"donkey run -d failed: {last_line(completed.stderr)}"
        return [result]
    container_id = completed.stdout.strip()
    try:
        time.sleep(memory.SETTLE_SECONDS)
        processes = memory.processes_naming(container_id)
        if not processes:
            result.skipped = ("no donkey process names the container in its command line, "
                              "so there is nothing to measure")
            return [result]
        result.subject_samples.append(memory.total_pss_mib(processes))
        result.note = (f"donkey: {len(processes)} process(es) that name the container "
                       "(its monitor)")
    finally:
        run_command(box.donkey_command("rm", "-f", container_id), box.env)

    peer_mib, peer_note = memory.containerd_shim_pss(box)
    if peer_mib is None:
        result.note = f"{result.note}; peer skipped: {peer_note}"
        result.peer = None
    else:
        result.peer_samples.append(peer_mib)
        result.note = f"{result.note}; {peer_note}"
    return [result]
