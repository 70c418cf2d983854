#!/bin/bash
# Provision ubuntu/trusty64 (Ubuntu 14.04, kernel 3.13, cgroup v1 through cgroup-lite) to run
# donkey's integration suite.
#
# donkey needs Python 3.11, and 14.04 ships 3.4. The deadsnakes PPA publishes no 3.11 build
# for trusty, so this script builds it from source. It builds OpenSSL 1.1.1w first: Python
# 3.10 and later need OpenSSL 1.1.1 for the ssl module (trusty has 1.0.1f), and pip needs ssl
# to reach PyPI. It takes about 15 to 25 minutes on two cores (an estimate, not measured here).
#
# NOTE: not tested end to end. It never ran here, because the development machines have no
# VirtualBox and no internet beyond the package registries. The sources are fetched over
# HTTPS with trusty's 2014 wget and CA list and are not checked against pinned checksums.
set -euxo pipefail

OPENSSL_VERSION=1.1.1w
PYTHON_VERSION=3.11.9
PREFIX=/opt/python3.11
VENV=/opt/donkey-venv

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q build-essential wget ca-certificates zlib1g-dev libffi-dev \
    libbz2-dev libreadline-dev libsqlite3-dev liblzma-dev libncurses5-dev \
    busybox-static stress iproute2 cgroup-lite rsync

if [ ! -x "$PREFIX/bin/python3.11" ]; then
    workdir=$(mktemp -d)
    cd "$workdir"

    wget -q "https://www.openssl.org/source/openssl-${OPENSSL_VERSION}.tar.gz"
    tar -xzf "openssl-${OPENSSL_VERSION}.tar.gz"
    (cd "openssl-${OPENSSL_VERSION}" \
        && ./config --prefix="$PREFIX/openssl" --openssldir="$PREFIX/openssl" shared \
        && make -j"$(nproc)" && make install_sw)

    wget -q "https://www.python.org/ftp/python/${PYTHON_VERSION}/Python-${PYTHON_VERSION}.tgz"
    tar -xzf "Python-${PYTHON_VERSION}.tgz"
    (cd "Python-${PYTHON_VERSION}" \
        && LDFLAGS="-Wl,-rpath,$PREFIX/openssl/lib -Wl,-rpath,$PREFIX/lib" \
           ./configure --prefix="$PREFIX" --with-openssl="$PREFIX/openssl" --enable-shared \
        && make -j"$(nproc)" && make altinstall)

    cd /
    rm -rf "$workdir"
fi

"$PREFIX/bin/python3.11" -c "import ssl, sqlite3, lzma; print(ssl.OPENSSL_VERSION)"

if [ ! -x "$VENV/bin/pytest" ]; then
    "$PREFIX/bin/python3.11" -m venv "$VENV"
    "$VENV/bin/pip" install -q pytest pexpect
fi
"$VENV/bin/pip" install -q -e /vagrant

echo "run the suite with: cd /vagrant && sudo $VENV/bin/pytest -ra tests/integration"
