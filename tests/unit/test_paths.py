"""Path resolution inside a container root, on temporary trees, without root."""

from __future__ import annotations

import os

import pytest

from donkey.errors import CommandNotExecutable, CommandNotFound
from donkey.runtime.paths import find_executable, home_from_passwd, remove_tree, secure_join


@pytest.fixture
def root(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "usr" / "bin").mkdir(parents=True)
    return tmp_path


def test_secure_join_plain(root):
    assert secure_join(str(root), "/etc/passwd") == f"{root}/etc/passwd"


def test_secure_join_dotdot_clamped(root):
    assert secure_join(str(root), "/../../etc") == f"{root}/etc"
    assert secure_join(str(root), "etc/../../..") == str(root)


def test_secure_join_absolute_symlink_stays_inside(root):
    os.symlink("/etc", root / "data")
    assert secure_join(str(root), "/data/file") == f"{root}/etc/file"


def test_secure_join_relative_symlink_escape_clamped(root):
    os.symlink("../../../../outside", root / "etc" / "up")
    assert secure_join(str(root), "/etc/up/x") == f"{root}/outside/x"


def test_secure_join_chained_symlinks(root):
    os.symlink("/usr", root / "a")
    os.symlink("/a/bin", root / "b")
    assert secure_join(str(root), "/b/sh") == f"{root}/usr/bin/sh"


def test_secure_join_symlink_loop(root):
    os.symlink("/loop2", root / "loop1")
    os.symlink("/loop1", root / "loop2")
    with pytest.raises(Exception) as raised:
        secure_join(str(root), "/loop1/x")
    assert "symbolic links" in str(raised.value)


def test_find_executable_in_path(root):
    program = root / "usr" / "bin" / "tool"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    path = f"{root}/nowhere:{root}/usr/bin"
    assert find_executable("tool", path) == str(program)


def test_find_executable_not_found(root):
    with pytest.raises(CommandNotFound) as raised:
        find_executable("nothing", f"{root}/usr/bin")
    assert raised.value.exit_code == 127
    assert "nothing" in str(raised.value)


def test_find_executable_not_executable(root):
    program = root / "usr" / "bin" / "data"
    program.write_text("x")
    program.chmod(0o644)
    with pytest.raises(CommandNotExecutable) as raised:
        find_executable("data", f"{root}/usr/bin")
    assert raised.value.exit_code == 126


def test_find_executable_skips_directories(root):
    (root / "usr" / "bin" / "dir").mkdir()
    with pytest.raises(CommandNotFound):
        find_executable("dir", f"{root}/usr/bin")


def test_find_executable_with_slash(root):
    with pytest.raises(CommandNotFound):
        find_executable(f"{root}/missing", "")
    with pytest.raises(CommandNotExecutable):
        find_executable(str(root / "etc"), "")


def test_home_from_passwd():
    text = "root:x:0:0:root:/root:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\nbroken\n"
    assert home_from_passwd(text) == "/root"
    assert home_from_passwd(text, 1000) == "/home/bob"
    assert home_from_passwd(text, 5) is None


def test_remove_tree_spares_link_targets(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("host data")
    tree = tmp_path / "layer"
    (tree / "upper" / "deep").mkdir(parents=True)
    (tree / "upper" / "deep" / "file").write_text("x")
    (tree / "upper" / "link-to-dir").symlink_to(outside)
    (tree / "upper" / "link-to-file").symlink_to(outside / "keep")
    (tree / "upper" / "dangling").symlink_to(tmp_path / "missing")

    remove_tree(str(tree))

    assert not tree.exists()
    assert (outside / "keep").read_text() == "host data"


def test_remove_tree_missing_path(tmp_path):
    remove_tree(str(tmp_path / "missing"))
    assert list(tmp_path.iterdir()) == []


def test_remove_tree_keeps_top_link(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep").write_text("x")
    (tmp_path / "link").symlink_to(target)

    remove_tree(str(tmp_path / "link"))

    assert (target / "keep").exists()
