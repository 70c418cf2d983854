"""The state store's name and --rm indexes, in a temporary root (no root privileges needed)."""

import errno
import json
import os
import subprocess

import pytest

from donkey.config.container import ContainerConfig
from donkey.errors import Conflict
from donkey.runtime.state import ContainerState, StateStore, process_start_time


def _state(auto_remove: bool = False) -> ContainerState:
    config = ContainerConfig(id=os.urandom(32).hex(), name="", image="busybox",
                             rootfs="/nonexistent", command=["true"], env=[], hostname="h",
                             auto_remove=auto_remove)
    return ContainerState(config=config)


def test_create_records_the_name_and_rejects_it_twice(tmp_path):
    store = StateStore(str(tmp_path))
    first = _state()
    store.create(first, "web")
    assert (tmp_path / ".names" / "web").read_text() == first.id

    with pytest.raises(Conflict, match=f'"web" is already in use by container {first.id[:12]}'):
        store.create(_state(), "web")


def test_remove_frees_the_name_and_the_rm_marker(tmp_path):
    store = StateStore(str(tmp_path))
    state = _state(auto_remove=True)
    store.create(state, "job")
    assert store.auto_remove_ids() == [state.id]

    store.remove(state.id, state.name)
    assert sorted(os.listdir(tmp_path / ".names")) == []
    assert store.auto_remove_ids() == []
    store.create(_state(), "job")


def test_remove_finds_name_in_state(tmp_path):
    store = StateStore(str(tmp_path))
    state = _state()
    store.create(state, "db")
    store.remove(state.id)
    assert not (tmp_path / ".names" / "db").exists()


def test_name_of_a_vanished_container_is_free_again(tmp_path):
    store = StateStore(str(tmp_path))
    state = _state()
    store.create(state, "ghost")
    # As if donkey was killed during rm, after the state directory was removed.
    os.rename(tmp_path / state.id, tmp_path / "elsewhere")

    replacement = _state()
    store.create(replacement, "ghost")
    assert (tmp_path / ".names" / "ghost").read_text() == replacement.id


def test_generated_names_are_recorded_and_unique(tmp_path):
    store = StateStore(str(tmp_path))
    states = [_state() for _ in range(40)]
    for state in states:
        store.create(state, None)
    names = {state.name for state in states}
    assert len(names) == 40
    assert set(os.listdir(tmp_path / ".names")) == names


def test_root_of_an_older_donkey_gets_its_indexes(tmp_path):
    # Containers written before the indexes existed: state directories only.
    old = _state(auto_remove=True)
    old.config.name = "legacy"
    os.makedirs(tmp_path / old.id)
    (tmp_path / old.id / "state.json").write_text(json.dumps(old.to_dict()))

    store = StateStore(str(tmp_path))
    with pytest.raises(Conflict):
        store.create(_state(), "legacy")
    assert store.auto_remove_ids() == [old.id]


def test_state_round_trips_through_the_store(tmp_path):
    store = StateStore(str(tmp_path))
    state = _state()
    state.cgroup_paths = {"memory": "/sys/fs/cgroup/memory/donkey/x"}
    store.create(state, "round")
    loaded = store.load(state.id)
    assert loaded.to_dict() == state.to_dict()
    # The file is plain JSON that other tools (and json itself) read.
    with open(tmp_path / state.id / "state.json") as stream:
        assert json.load(stream) == state.to_dict()
    assert [other.id for other in store.list()] == [state.id]


def test_failed_create_frees_the_name(tmp_path, monkeypatch):
    store = StateStore(str(tmp_path))
    state = _state(auto_remove=True)

    def full_disk(_state):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store, "save", full_disk)
    with pytest.raises(OSError):
        store.create(state, "full")
    monkeypatch.undo()

    assert not (tmp_path / state.id).exists()
    assert not (tmp_path / ".names" / "full").exists()
    assert store.auto_remove_ids() == []
    store.create(_state(), "full")


def test_unfinished_create_frees_name(tmp_path):
    store = StateStore(str(tmp_path))
    store.create(_state(), "warmup")
    # As if donkey was killed between the directory and the first state file.
    stuck = "c" * 64
    os.makedirs(tmp_path / stuck)
    (tmp_path / ".names" / "stuck").write_text(stuck)

    store.create(_state(), "stuck")
    assert not (tmp_path / stuck).exists()


def test_missing_auto_remove_index_is_rebuilt(tmp_path):
    store = StateStore(str(tmp_path))
    state = _state(auto_remove=True)
    store.create(state, "job")
    os.unlink(tmp_path / ".auto-remove" / state.id)
    os.rmdir(tmp_path / ".auto-remove")

    assert store.auto_remove_ids() == [state.id]
    assert (tmp_path / ".names" / "job").read_text() == state.id


def test_fresh_root_has_empty_indexes(tmp_path):
    store = StateStore(str(tmp_path / "new"))
    assert store.auto_remove_ids() == []
    assert sorted(os.listdir(tmp_path / "new")) == [".auto-remove", ".lock", ".names"]


def test_abandoned_without_init():
    finished = subprocess.Popen(["true"])
    finished.wait()
    orphan = _state(auto_remove=True)
    orphan.creator_pid = finished.pid
    orphan.creator_start_time = 1
    assert orphan.is_abandoned()

    creating = _state(auto_remove=True)
    creating.creator_pid = os.getpid()
    creating.creator_start_time = process_start_time(os.getpid())
    assert not creating.is_abandoned()

    # A state from before creators were recorded is never taken for abandoned.
    assert not _state(auto_remove=True).is_abandoned()
