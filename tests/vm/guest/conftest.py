"""Checks of the kernel-matrix guest itself (layout, tools, install), run inside it by
`python -m vm` together with the integration suite; they skip on any other host."""

import os

import pytest


@pytest.fixture
def requested_layout() -> str:
    layout = os.environ.get("DONKEY_VM_LAYOUT")
    if not layout:
        pytest.skip("not inside a kernel-matrix guest (DONKEY_VM_LAYOUT is unset)")
    return layout
