# The course's commands. Each one creates or reuses .venv and installs what it needs.
#   make course   run every lesson on the real Fashion-MNIST into runs/course/
#   make test     run the test suite, nbval on the stored notebook outputs included
#   make test-fast  the quick lane for contributors: unit tests and notebook hygiene
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages: the real Fashion-MNIST (offline default dataset), for the browser test
# Chromium, for the grader's sandbox bubblewrap.
COURSE_DEBS := dataset-fashion-mnist
TEST_DEBS := dataset-fashion-mnist chromium bubblewrap

comma := ,
.PHONY: cpu-dependence test-foreign
.PHONY: course test test-fast system-deps-course system-deps-test data notebooks lessons-table lesson-times benchmark lint format clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[course,test]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (course)" >/dev/null
	touch $(STAMP)

# Installs only what is missing, and only where apt-get exists (Debian, Ubuntu).
system-deps-course:
	@bash .ci/debian-packages.sh $(COURSE_DEBS)
system-deps-test:
	@bash .ci/debian-packages.sh $(TEST_DEBS)

data: $(STAMP)
	$(BIN)/course data prepare fashion_mnist

course: system-deps-course $(STAMP) data
	$(BIN)/course run --final --out runs/course

# The test files on two workers (each file stays on one), then the lessons under nbval, in
# order and with a fresh model cache: lesson 04 reuses the model lesson 03 trains.
# The website is rebuilt first (seconds): its tests fail on a build older than the notebooks.
test: system-deps-test $(STAMP) data site
	COURSE_MODEL_CACHE=$$(mktemp -d) $(BIN)/python -m pytest tests -n 2 --dist loadfile --durations=15
	COURSE_MODEL_CACHE=$$(mktemp -d) $(BIN)/python -m pytest notebooks --durations=10

# Contributors: the unit tests and notebook hygiene checks. No test marked slow (executes a
# notebook, builds a virtual environment, trains for minutes) or browser runs.
test-fast: $(STAMP) data
	COURSE_MODEL_CACHE=$$(mktemp -d) $(BIN)/python -m pytest tests -m "not slow and not browser" --durations=5

# The lowest versions that pyproject.toml allows, pinned in .ci/lowest-constraints.txt, in their
# own venv; unit tests plus lessons 01 and 02 under nbval (no training, no browser). Text only:
# an older matplotlib lays the same figure out a pixel apart.
LOWEST := .venv-lowest
.PHONY: test-lowest
$(LOWEST)/.installed: pyproject.toml .ci/lowest-constraints.txt
	test -x $(LOWEST)/bin/python || $(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install -q --upgrade pip
	$(LOWEST)/bin/python -m pip install -q -c .ci/lowest-constraints.txt -e ".[course,test]"
	touch $@

test-lowest: system-deps-course $(LOWEST)/.installed
	$(LOWEST)/bin/course data prepare fashion_mnist
	COURSE_FIGURES=off COURSE_MODEL_CACHE=$$(mktemp -d) $(LOWEST)/bin/python -m pytest -m "not slow and not browser" \
	  tests notebooks/01_*.ipynb notebooks/02_*.ipynb

# Maintainers: re-execute every lesson in place with default parameters and a fresh model cache,
# timed (nbconvert, then nbstripout). LESSONS=06,07 re-executes only those.
notebooks: $(STAMP) data
	$(BIN)/python benchmarks/lesson_times.py --in-place $(if $(LESSONS),--lessons $(LESSONS))
	$(BIN)/course exercises build

# Maintainers, after `make notebooks`: which stored outputs depend on the CPU. Every lesson is
# re-executed with oneDNN's kernels (another order of the floating-point additions) and each cell
# that changed gets its measured tolerances in its metadata (benchmarks/cpu_dependence.py).
cpu-dependence: $(STAMP) data
	$(BIN)/python benchmarks/cpu_dependence.py --write $(if $(LESSONS),--lessons $(LESSONS))

# The lessons under nbval as another CPU runs them: oneDNN's AVX-512 kernels (its AVX2 ones where
# the CPU has no AVX-512), another order than both the stored outputs' and the one measured by
# `make cpu-dependence`. The recorded settings then differ, so the tolerant comparison is used.
test-foreign: $(STAMP) data
	TF_ENABLE_ONEDNN_OPTS=1 ONEDNN_MAX_CPU_ISA=AVX512_CORE COURSE_MODEL_CACHE=$$(mktemp -d) \
	  $(BIN)/python -m pytest --durations=10 \
	  $(if $(LESSONS),$(foreach n,$(subst $(comma), ,$(LESSONS)),notebooks/$(n)_*.ipynb),notebooks)

# The student notebooks notebooks/exercises/, generated from the lessons' solution cells.
.PHONY: exercises
exercises: $(STAMP)
	$(BIN)/course exercises build

lessons-table: $(STAMP)
	$(BIN)/course lessons table --write

benchmark: system-deps-course $(STAMP) data
	$(BIN)/python benchmarks/train_speed.py
	$(BIN)/python benchmarks/train_speed.py --resnet

# Times every lesson with its defaults and writes the times into lessons/*.md and the README.
lesson-times: system-deps-course $(STAMP) data
	$(BIN)/python benchmarks/lesson_times.py --write

# The course website in _build/site/, from the stored outputs: nothing is executed.
.PHONY: site
SITE := _build/site
site: $(STAMP)
	$(BIN)/python website/build.py --out $(SITE)

lint: $(STAMP)
	$(BIN)/ruff check utils tests benchmarks notebooks website

# Normalise the notebooks' JSON, keeping outputs (what the pre-commit hook does).
format: $(STAMP)
	$(BIN)/nbstripout --keep-output --keep-count notebooks/*.ipynb

clean:
	rm -rf runs .pytest_cache
