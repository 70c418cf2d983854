#!/bin/sh
# Provision the donkey libvirt box: install the synced checkout into the box's test venv.
# The box has no route to PyPI assumed: pytest, pexpect and click are already in the venv
# (built by `python -m vm`), so pip installs offline with the venv's own setuptools.
set -eu

VENV=/opt/donkey-venv
cd /vagrant

"$VENV/bin/pip" install -q --no-index --no-build-isolation \
    --find-links /opt/donkey-wheels -e /vagrant

echo "layout: $(cat /run/donkey-guest-layout 2>/dev/null || echo unknown), kernel: $(uname -r)"
echo "run the suite with: cd /vagrant && $VENV/bin/pytest -ra tests/integration"
