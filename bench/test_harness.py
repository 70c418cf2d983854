"""Checks of the suite's own arithmetic and report, without root: `pytest bench`."""

from __future__ import annotations

import json

import pytest

from bench import report
from bench.harness import BenchError, Result, last_line, paired, run_many


def test_result_medians_and_ratio():
    result = Result("x", "subject", "peer", subject_samples=[3.0, 1.0, 2.0],
                    peer_samples=[1.0, 1.0, 0.5], subject_cpu=[2.0], peer_cpu=[4.0])
    assert result.subject_median == 2.0
    assert result.peer_median == 1.0
    assert result.ratio == 2.0
    assert result.cpu_ratio == 0.5


def test_result_without_peer_has_no_ratio():
    result = Result("x", "subject", subject_samples=[1.0])
    assert result.ratio is None
    assert result.cpu_ratio is None


def test_paired_alternates_after_warmup():
    calls = []
    result = Result("x", "a", "b")
    paired(result, lambda: calls.append("a"), lambda: calls.append("b"), runs=2, warmup=1)
    assert calls == ["a", "b", "a", "b", "a", "b"]
    assert len(result.subject_samples) == 2
    assert len(result.peer_cpu) == 2


def test_run_many_reports_failed_parallel_run():
    with pytest.raises(BenchError, match="1 of 2 parallel runs failed"):
        run_many([["true"], ["sh", "-c", "echo broken >&2; exit 3"]], None, parallel=True)


def test_last_line_skips_blank_lines():
    assert last_line(b"first\nsecond\n\n") == "second"
    assert last_line("") == "(no output)"


def test_table_lists_skipped_and_failed_with_reasons():
    results = [
        Result("start", "donkey", "runc", subject_samples=[0.05], peer_samples=[0.025]),
        Result("crun", "donkey", "crun", skipped="crun run failed on this host: hybrid"),
        Result("batches", "donkey", failed="1 of 20 parallel runs failed"),
    ]
    text = report.table(results)
    assert "| start" in text
    assert "50.0 ms" in text
    assert "2.00" in text
    assert "- crun: crun run failed on this host: hybrid" in text
    assert "- batches: failed: 1 of 20 parallel runs failed" in text


def test_json_keeps_every_sample(tmp_path):
    results = [Result("start", "donkey", "runc", subject_samples=[0.1, 0.2],
                      peer_samples=[0.05, 0.05])]
    path = report.write_json(results, str(tmp_path), {"runs": 2})
    document = json.loads(open(path, encoding="utf-8").read())
    assert document["results"][0]["subject_samples"] == [0.1, 0.2]
    assert document["machine"]["nproc"] >= 1
    assert document["settings"] == {"runs": 2}
