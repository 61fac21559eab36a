"""mypy --strict on the generated package and on the typing cases: every file of
mypy_cases/pass type-checks; every file of mypy_cases/fail is rejected, at the lines marked
`# error: <text>` and only there (the Python counterpart of the trybuild cases)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
# A cold mypy run over SQLAlchemy and numpy takes about 40 s of CPU: keep the cache per machine
# and mypy version, outside the checkout, so that fresh clones on the same machine reuse it (it is
# only a cache: a cold run gives the same answers).
CACHE = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    / "tenancy"
    / f"mypy-{sys.version_info[0]}.{sys.version_info[1]}"
)
CASES = HERE / "mypy_cases"
PACKAGE = HERE.parent.parent / "examples" / "rag" / "python"
SERVICE = HERE.parent.parent / "examples" / "rag" / "python-service"


def mypy(*targets: str) -> tuple[int, str]:
    env = dict(os.environ, MYPYPATH=os.pathsep.join([str(PACKAGE), str(SERVICE)]))
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--cache-dir",
         str(CACHE), *targets],
        capture_output=True, text=True, env=env, cwd=HERE,
    )
    return done.returncode, done.stdout + done.stderr


def test_the_generated_package_passes_mypy_strict() -> None:
    code, out = mypy("-p", "rag_tenancy")
    assert code == 0, out


def test_the_python_service_passes_mypy_strict() -> None:
    code, out = mypy("-p", "rag_service_py")
    assert code == 0, out


def test_the_passing_cases_pass() -> None:
    files = sorted(str(p) for p in (CASES / "pass").glob("*.py"))
    assert len(files) >= 3
    code, out = mypy(*files)
    assert code == 0, out


FAIL_CASES = sorted((CASES / "fail").glob("*.py"))


@pytest.fixture(scope="module")
def fail_output() -> str:
    code, out = mypy(*(str(p) for p in FAIL_CASES))
    assert code == 1, out
    return out


@pytest.mark.parametrize("case", FAIL_CASES, ids=lambda p: p.stem)
def test_the_failing_cases_fail_where_marked(case: Path, fail_output: str) -> None:
    expected: dict[int, str] = {}
    for number, line in enumerate(case.read_text().splitlines(), start=1):
        marker = re.search(r"# error: (.+)$", line)
        if marker:
            expected[number] = marker.group(1).strip()
    assert expected, f"{case.name} marks no expected error"
    errors: dict[int, list[str]] = {}
    for line in fail_output.splitlines():
        found = re.match(rf".*{re.escape(case.name)}:(\d+): error: (.+)$", line)
        if found:
            errors.setdefault(int(found.group(1)), []).append(found.group(2))
    assert set(errors) == set(expected), f"{case.name}: {errors}"
    for number, text in expected.items():
        assert any(text in message for message in errors[number]), (
            f"{case.name}:{number}: expected {text!r}, got {errors[number]}"
        )
