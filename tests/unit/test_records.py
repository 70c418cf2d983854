"""The plain record classes that replace dataclasses on the start path, and the channel."""

from __future__ import annotations

import json
import os

from donkey.config.container import BindMount, ContainerConfig
from donkey.hal.procfs import Mount
from donkey.runtime.channel import Channel
from donkey.runtime.state import CREATED, ContainerState


def _config(**changes) -> ContainerConfig:
    values = dict(id="a" * 64, name="calm_mule_01", image="busybox", rootfs="/images/busybox",
                  command=["true"], env=["PATH=/bin"], hostname="aaaaaaaaaaaa")
    values.update(changes)
    return ContainerConfig(**values)


def test_config_defaults_are_fresh_per_instance():
    first, second = _config(), _config()
    first.mounts.append(BindMount("/src", "/dst"))
    first.resources["memory"] = 1

    assert second.mounts == []
    assert second.resources == {}
    assert (second.workdir, second.tty, second.storage_driver) == ("/", False, "overlay")


def test_config_equality_and_repr():
    assert _config() == _config()
    assert _config() != _config(tty=True)
    assert repr(BindMount("/a", "/b", True)) == \
        "BindMount(source='/a', destination='/b', readonly=True)"


def test_state_written_before_records_still_loads():
    # The JSON that the dataclass version of ContainerState wrote, key for key.
    old = {"status": "exited", "created": 1.5, "pid": 0, "pid_start_time": 0,
           "started_at": 2.0, "finished_at": 3.0, "exit_code": 0, "oom_killed": False,
           "memory_peak": None, "cgroup_paths": {"memory": "/sys/fs/cgroup/memory/x"},
           "data_dir": "/d", "monitor_pid": 0, "monitor_start_time": 0, "log_path": "",
           "init": False, "restart_policy": "no", "restart_count": 0, "error": "",
           "config": {"id": "b" * 64, "name": "n1", "image": None, "rootfs": "/r",
                      "command": ["sh"], "env": [], "hostname": "h", "workdir": "/",
                      "tty": False, "interactive": False,
                      "mounts": [{"source": "/s", "destination": "/d", "readonly": True}],
                      "auto_remove": True, "storage_driver": "vfs", "resources": {}}}

    state = ContainerState.from_dict(json.loads(json.dumps(old)))

    assert state.config.mounts == [BindMount("/s", "/d", True)]
    # Fields added since then come back with their defaults, before the config.
    expected = {key: value for key, value in old.items() if key != "config"}
    expected.update(creator_pid=0, creator_start_time=0, config=old["config"])
    assert state.to_dict() == expected
    assert list(state.to_dict()) == list(expected)


def test_state_defaults():
    state = ContainerState(_config())
    assert state.status == CREATED
    assert state.created > 0
    assert state.cgroup_paths == {}
    assert ContainerState(_config()).cgroup_paths is not state.cgroup_paths


def test_frozen_records_hash_by_value():
    mount = Mount(1, 0, "0:1", "/", "/proc", ("rw",), "proc", "proc", ("rw",))
    same = Mount(1, 0, "0:1", "/", "/proc", ("rw",), "proc", "proc", ("rw",))
    assert mount == same
    assert len({mount, same}) == 1


def test_channel_carries_messages_and_descriptors():
    parent, child = Channel.pair()
    read_end, write_end = os.pipe()
    try:
        child.send({"type": "pty"}, fds=[read_end, write_end])
        message, fds = parent.receive()
        assert message == {"type": "pty"}
        assert len(fds) == 2
        os.write(fds[1], b"x")
        assert os.read(read_end, 1) == b"x"
        for fd in fds:
            os.close(fd)

        child.close()
        assert parent.receive() == (None, [])
    finally:
        parent.close()
        os.close(read_end)
        os.close(write_end)
