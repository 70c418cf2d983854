"""Container configuration from flags: env, volumes, names, without root."""

from __future__ import annotations

import pytest

from donkey.config import container as cfg
from donkey.errors import InvalidArgument, NotFound


def test_build_env_defaults_without_tty():
    env = cfg.build_env([], [], "abc123", tty=False)
    assert env == [f"PATH={cfg.DEFAULT_PATH}", "HOSTNAME=abc123"]


def test_build_env_tty_adds_term():
    env = cfg.build_env([], [], "h", tty=True)
    assert "TERM=xterm" in env


def test_build_env_precedence():
    env = cfg.build_env(["PATH=/image", "A=image", "B=image"], [("B", "user")], "h", tty=False)
    assert env == ["PATH=/image", "HOSTNAME=h", "A=image", "B=user"]


def test_parse_env_assignment_forms():
    host = {"FROM_HOST": "x"}
    assert cfg.parse_env_assignment("K=v=w", host) == ("K", "v=w")
    assert cfg.parse_env_assignment("K=", host) == ("K", "")
    assert cfg.parse_env_assignment("FROM_HOST", host) == ("FROM_HOST", "x")
    assert cfg.parse_env_assignment("UNSET", host) is None


@pytest.mark.parametrize("item", ["=value", "", "BAD KEY=1", "TAB\tKEY=1"])
def test_parse_env_assignment_rejects(item):
    with pytest.raises(InvalidArgument) as raised:
        cfg.parse_env_assignment(item, {})
    assert "KEY=VALUE" in str(raised.value)


def test_parse_env_file(tmp_path):
    path = tmp_path / "env"
    path.write_text("# comment\n\n  A=1\nB=two words\nFROM_HOST\nMISSING\n")
    pairs = cfg.parse_env_file(str(path), {"FROM_HOST": "h"})
    assert pairs == [("A", "1"), ("B", "two words"), ("FROM_HOST", "h")]


def test_parse_env_file_names_bad_line(tmp_path):
    path = tmp_path / "env"
    path.write_text("A=1\n=oops\n")
    with pytest.raises(InvalidArgument) as raised:
        cfg.parse_env_file(str(path), {})
    assert "line 2" in str(raised.value)


def test_parse_env_file_missing(tmp_path):
    with pytest.raises(NotFound):
        cfg.parse_env_file(str(tmp_path / "nope"), {})


def test_parse_volume_forms(tmp_path):
    mount = cfg.parse_volume(f"{tmp_path}:/work")
    assert (mount.source, mount.destination, mount.readonly) == (str(tmp_path), "/work", False)
    assert cfg.parse_volume(f"{tmp_path}:/work/:ro").readonly
    assert cfg.parse_volume(f"{tmp_path}:/a/../b").destination == "/b"


@pytest.mark.parametrize(
    "spec", ["/tmp", "/tmp:", ":/x", "/tmp:/x:rx", "/tmp:/x:ro:extra", "rel:/x", "/tmp:rel",
             "/tmp:/", "/tmp:/proc", "/tmp:/proc/sys"]
)
def test_parse_volume_rejects(spec):
    with pytest.raises(InvalidArgument):
        cfg.parse_volume(spec)


def test_parse_volume_missing_source(tmp_path):
    with pytest.raises(NotFound) as raised:
        cfg.parse_volume(f"{tmp_path}/nope:/x")
    assert "does not exist" in str(raised.value)


@pytest.mark.parametrize("name", ["web", "my_app.1", "a-b", "n" * 255])
def test_validate_name_accepts(name):
    assert cfg.validate_name(name) == name


@pytest.mark.parametrize("name", ["a", "-x", "has space", "slash/name", "", "n" * 256,
                                  "web\n"])
def test_validate_name_rejects(name):
    with pytest.raises(InvalidArgument):
        cfg.validate_name(name)


def test_validate_hostname():
    assert cfg.validate_hostname("box-1.local") == "box-1.local"
    for bad in ("", "-x", "a" * 64, "a..b", "under_score"):
        with pytest.raises(InvalidArgument):
            cfg.validate_hostname(bad)


def test_config_round_trip(tmp_path):
    config = cfg.ContainerConfig(
        id="abc", name="n", image="busybox", rootfs="/r", command=["sh"], env=["A=1"],
        hostname="h", mounts=[cfg.BindMount(str(tmp_path), "/x", True)],
    )
    assert cfg.ContainerConfig.from_dict(config.to_dict()) == config
