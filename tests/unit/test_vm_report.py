"""Matrix report (vm/report.py): JUnit counts, statuses, the table and the generated doc."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from vm import report  # noqa: E402

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="5">
<testcase classname="tests.integration.test_run" name="test_echo" time="0.1"/>
<testcase classname="tests.integration.test_run" name="test_exit" time="0.1"/>
<testcase classname="tests.integration.test_cgroups" name="test_oom" time="2.0">
  <failure message="assert 0 == 137">details</failure></testcase>
<testcase classname="tests.integration.test_cgroups" name="test_swap" time="0.0">
  <skipped type="pytest.skip" message="no swap accounting">reason</skipped></testcase>
<testcase classname="tests.integration.test_cgroups" name="test_fixture" time="0.0">
  <error message="fixture failed">trace</error></testcase>
</testsuite></testsuites>
"""


def test_parse_junit_counts(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT)
    counts = report.parse_junit(path)
    assert (counts.passed, counts.failed, counts.errors, counts.skipped) == (2, 1, 1, 1)
    assert counts.failures == [
        "tests.integration.test_cgroups::test_oom",
        "tests.integration.test_cgroups::test_fixture",
    ]


def test_parse_junit_merges_teardown_error(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="t" name="test_a"><failure message="m"/></testcase>'
        '<testcase classname="t" name="test_a"><error message="teardown"/></testcase>'
        '<testcase classname="t" name="test_b"/>'
        "</testsuite></testsuites>"
    )
    counts = report.parse_junit(path)
    assert (counts.passed, counts.failed, counts.errors) == (1, 1, 0)
    assert counts.failures == ["t::test_a"]


def test_status_of_exit_codes():
    assert report.status_of(report.Counts(passed=3), 0) == "ok"
    assert report.status_of(report.Counts(passed=3, failed=1), 1) == "failed"
    assert report.status_of(report.Counts(), 5) == "no tests"
    assert report.status_of(report.Counts(passed=1), 124) == "interrupted"
    assert report.status_of(report.Counts(), None) == "error"


def sample_results() -> list[report.Result]:
    full = report.Result("trixie", "v2", "full", status="ok", release="6.12.118+deb13-amd64")
    full.counts = report.Counts(passed=40, skipped=2)
    full.donkey_info = {
        "cgroup_layout": "v2",
        "controllers": {"cpu": {"version": "v2"}, "memory": {"version": "v2"}},
        "missing": ["no overlay filesystem"],
    }
    smoke = report.Result("bullseye", "v1", "smoke", status="failed", release="5.10.0-46-amd64")
    smoke.counts = report.Counts(passed=4, failed=1, failures=["test_run::test_oom"])
    smoke.donkey_info_note = "`donkey info --json` failed with exit 2"
    broken = report.Result("bookworm", "hybrid", "smoke", status="error", error="SSH timed out")
    return [full, smoke, broken]


def test_format_matrix_rows_and_columns():
    table = report.format_matrix(sample_results()).splitlines()
    assert table[0].split() == ["kernel", "v1", "hybrid", "v2"]
    assert table[2].startswith("bullseye (5.10)")
    assert "4p 1f 0s (smoke)" in table[2]
    assert "error" in table[3]
    assert "40p 0f 2s" in table[4]


def test_probe_summary_groups_controllers():
    full = sample_results()[0]
    assert report.probe_summary(full) == "layout v2; v2: cpu memory"


def test_probe_summary_without_info_gives_note():
    smoke = sample_results()[1]
    assert report.probe_summary(smoke) == "`donkey info --json` failed with exit 2"


def test_markdown_lists_failures_and_gaps():
    meta = {"date": "today", "command": "nox -s vm", "host": "Linux", "wall_seconds": 600,
            "jobs": 2, "memory_mib": 1024}  # fmt: skip
    text = report.render_markdown(sample_results(), meta)
    assert text.startswith(report.GENERATED_START)
    assert "**10.0 min**" in text
    assert "- bullseye-v1: `test_run::test_oom`" in text
    assert "- trixie-v2: no overlay filesystem" in text
    assert "(error: SSH timed out)" in text


def test_update_document_keeps_hand_written_text(tmp_path):
    path = tmp_path / "kernel-matrix.md"
    path.write_text(
        f"# Title\n\nintro\n\n{report.GENERATED_START}\nold\n{report.GENERATED_END}\n\n"
        "## Reproducing\n\nsteps\n"
    )
    report.update_document(path, f"{report.GENERATED_START}\nnew\n{report.GENERATED_END}\n", "")
    text = path.read_text()
    assert "old" not in text
    assert "new" in text
    assert text.startswith("# Title\n\nintro\n")
    assert text.endswith("## Reproducing\n\nsteps\n")


def test_update_document_creates_from_template(tmp_path):
    path = tmp_path / "docs" / "kernel-matrix.md"
    report.update_document(path, "generated\n", "# Kernel matrix\n")
    assert path.read_text() == "# Kernel matrix\n\ngenerated\n"


def test_result_json_round_trip():
    result = sample_results()[1]
    assert report.Result.from_json(result.to_json()) == result
