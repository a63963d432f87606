#!/usr/bin/env bash
# The tests of one environment other than .venv: `bash .ci/lane.sh VENV [PYTEST ARGS...]`.
# Prints the versions it runs, then runs the unit tests (plus the extra pytest arguments, such as
# the notebooks to compare under nbval) and every lesson's quick run: the student notebooks, each
# lesson on CIFAR-10 with its quick settings (a small limit, one epoch), executed up to each
# exercise's stub. Both parts run; either one failing fails the lane.
# Used by `make test-lowest`, `make test-newest` and `make test-colab`.
set -uo pipefail
venv="$1"; shift
cd "$(dirname "$0")/.."
"$venv/bin/python" -m pip list 2>/dev/null | grep -iE '^(tensorflow|keras|numpy|scipy|matplotlib|papermill|nbval) '
"$venv/bin/course" data prepare fashion_mnist || exit 1
# The website's tests read a build no older than its sources (seconds, nothing executed).
"$venv/bin/python" website/build.py --out _build/site || exit 1
status=0
# Figures are not compared: another matplotlib lays the same figure out a pixel apart.
COURSE_FIGURES=off COURSE_MODEL_CACHE="$(mktemp -d)" "$venv/bin/python" -m pytest -m "not slow and not browser" \
  tests "$@" || status=1
COURSE_MODEL_CACHE="$(mktemp -d)" "$venv/bin/python" -m pytest -m slow tests/test_exercises.py \
  -k student_notebook_runs_up_to_each_stub || status=1
exit $status
