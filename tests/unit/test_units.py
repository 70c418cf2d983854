"""Docker size and CPU-count parsing."""

from __future__ import annotations

import re

import pytest

from donkey.cli import units
from donkey.cli.units import parse_bytes, parse_cpus
from donkey.errors import InvalidArgument


@pytest.mark.parametrize("text, value", [
    ("100m", 104857600), ("100M", 104857600), ("100mb", 104857600), ("100MiB", 104857600),
    ("1g", 1 << 30), ("1.5g", 1610612736), ("512", 512), ("512b", 512), ("4k", 4096),
    ("2t", 2 << 40), (" 64 m ", 64 << 20),
])
def test_parse_bytes_binary_units(text, value):
    assert parse_bytes(text) == value


def test_parse_bytes_unlimited_only_when_allowed():
    assert parse_bytes("-1", allow_unlimited=True) == -1
    with pytest.raises(InvalidArgument, match="invalid size '-1'"):
        parse_bytes("-1")


@pytest.mark.parametrize("text", ["", "m", "10x", "1..5m", "-5m", "ten"])
def test_parse_bytes_rejects_with_accepted_forms(text):
    with pytest.raises(InvalidArgument) as caught:
        parse_bytes(text, flag="--memory")

    assert repr(text) in str(caught.value)
    assert "b, k, m, g or t" in str(caught.value)
    assert caught.value.exit_code == 125


def test_parse_cpus():
    assert parse_cpus("1.5") == 1.5
    assert parse_cpus("2") == 2.0


@pytest.mark.parametrize("text", ["0", "-1", "abc", "nan", "inf", ""])
def test_parse_cpus_rejects(text):
    with pytest.raises(InvalidArgument, match="greater than 0"):
        parse_cpus(text)


SIZE_PATTERN = r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:b|ib)?$"


@pytest.mark.parametrize("text", [
    "100m", "100M", "1.5g", "512", "100mb", "100MiB", "100ib", "100b", "100 m", "100  kb",
    "1.", "1..5", ".5", "", "b", "m", "100x", "100mm", "100kibb", "1e3", "1 .5", "100 b",
    "100\tm", "0.0k", "1.5.2m", "100 ", "ib", "kib", "10gib", "10Gb", "10P", "10tb",
])
def test_size_split_matches_docker_pattern(text):
    match = re.match(SIZE_PATTERN, text, re.IGNORECASE)
    expected = (match.group(1), match.group(2).lower()) if match else None
    assert units._split_size(text) == expected
