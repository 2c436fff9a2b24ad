"""On CI a skip fails the run (tests/conftest.py), except the allow-listed ones.

Checked on a throwaway test module run by a real pytest in a subprocess, with this suite's hooks.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ALLOWED_CI_SKIPS, REPO_ROOT, skip_is_failure

INNER_TESTS = """
import pytest

def test_passes():
    pass

def test_skips_in_the_body():
    pytest.skip("chromium is not installed")

@pytest.mark.skipif(True, reason="the shared data is missing")
def test_skipped_by_a_mark():
    pass

def test_allowed_to_skip():
    pytest.skip("needs the peers' venv")
"""

INNER_CONFTEST = """
import tests.conftest as suite
from tests.conftest import pytest_make_collect_report, pytest_runtest_makereport  # noqa: F401

suite.ALLOWED_CI_SKIPS["test_inner.py::test_allowed_to_skip"] = "allowed for this check"
"""


def run_inner(tmp_path, ci: str | None) -> tuple[int, str]:
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    (tmp_path / "conftest.py").write_text(INNER_CONFTEST)
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    if ci is not None:
        env["CI"] = ci
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "test_inner.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.returncode, result.stdout


def counts(summary: str) -> dict[str, int]:
    return {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?)", summary)}


def test_on_ci_a_skip_fails_the_run_unless_allow_listed(tmp_path):
    returncode, output = run_inner(tmp_path, "true")
    assert returncode == 1, output
    # The body's skip becomes a failure, the mark's (at setup) an error; the allow-listed one skips.
    assert counts(output.strip().splitlines()[-1]) == {"passed": 1, "failed": 1, "error": 1, "skipped": 1}, output
    assert "skipped on CI: chromium is not installed" in output
    assert "ALLOWED_CI_SKIPS" in output  # the failure says how to allow a skip


def test_outside_ci_a_skip_stays_a_skip(tmp_path):
    returncode, output = run_inner(tmp_path, None)
    assert returncode == 0, output
    assert counts(output.strip().splitlines()[-1]) == {"passed": 1, "skipped": 3}, output


@pytest.mark.parametrize(
    ("nodeid", "fails"),
    [
        ("tests/test_browser.py::test_flow_run_page_and_answer_artifact_render", True),
        ("tests/test_benchmarks.py::test_peer_scripts_smoke[haystack]", False),  # parameters aside
    ],
)
def test_skip_policy_on_ci(nodeid, fails):
    assert skip_is_failure(nodeid, on_ci=True) is fails
    assert skip_is_failure(nodeid, on_ci=False) is False


def test_every_allowed_skip_names_an_existing_test_and_a_reason():
    for nodeid, reason in ALLOWED_CI_SKIPS.items():
        path, _, name = nodeid.partition("::")
        assert f"def {name}(" in (REPO_ROOT / path).read_text(), nodeid
        assert len(reason) > 40, nodeid
