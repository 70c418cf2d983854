"""Sessions: unit, integration, lint, and the longer ones (vm, bench).

`nox -s unit integration` is the test command the README and .ci/run use.
"""

import nox

nox.options.sessions = ["lint", "unit", "integration"]
nox.options.reuse_existing_virtualenvs = True

TEST_DEPS = ["pytest>=7", "pexpect>=4.8"]


@nox.session
def lint(session):
    session.install("ruff")
    session.run("ruff", "check", "donkey", "tests", "noxfile.py")


@nox.session
def unit(session):
    session.install("-e", ".", *TEST_DEPS)
    session.run("pytest", "-q", "tests/unit", *session.posargs)


@nox.session
def integration(session):
    session.install("-e", ".", *TEST_DEPS)
    session.run("pytest", "-q", "-ra", "tests/integration", *session.posargs)
