"""Selection logic of the kernel matrix (vm/matrix.py): which VMs boot and what each runs."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from vm import matrix  # noqa: E402


def test_parse_choice_all():
    assert matrix.parse_choice("all", matrix.LAYOUTS, "--cgroup") == ["v1", "hybrid", "v2"]


def test_parse_choice_list():
    assert matrix.parse_choice("trixie,bullseye", tuple(matrix.KERNELS), "--kernel") == [
        "trixie",
        "bullseye",
    ]


def test_parse_choice_rejects_unknown():
    with pytest.raises(ValueError, match="invalid --kernel value 'jessie'"):
        matrix.parse_choice("jessie", tuple(matrix.KERNELS), "--kernel")


def test_parse_choice_rejects_empty():
    with pytest.raises(ValueError, match="empty --cgroup value"):
        matrix.parse_choice(",", matrix.LAYOUTS, "--cgroup")


def test_plan_full_on_one_smoke_elsewhere():
    plan = matrix.plan(list(matrix.KERNELS), list(matrix.LAYOUTS))
    assert len(plan) == 9
    full = [c for c in plan if not c.smoke_only]
    assert [(c.kernel, c.layout) for c in full] == [("trixie", "v2")]


def test_plan_single_combination_runs_everything():
    (only,) = matrix.plan(["bullseye"], ["v1"])
    assert only.smoke_only is False
    assert only.name == "bullseye-v1"


def test_plan_keyword_runs_full_selection():
    plan = matrix.plan(["bookworm", "trixie"], ["v2"], keyword="test_oom")
    assert all(not c.smoke_only for c in plan)


def test_plan_smoke_everywhere():
    plan = matrix.plan(["trixie"], ["v2"], smoke=True)
    assert [c.selection for c in plan] == ["smoke"]


def test_plan_full_on_unselected_means_all_smoke():
    plan = matrix.plan(["bullseye"], ["v1", "hybrid"])
    assert [c.selection for c in plan] == ["smoke", "smoke"]


def test_command_line_v2_disables_v1():
    line = matrix.kernel_command_line("v2").split()
    assert "donkey.cgroup=v2" in line
    assert "cgroup_no_v1=all" in line


def test_command_line_hybrid_keeps_v1():
    line = matrix.kernel_command_line("hybrid").split()
    assert "donkey.cgroup=hybrid" in line
    assert "cgroup_no_v1=all" not in line
    assert "console=ttyS0" in line
