"""The ``course run`` command line: options, their checks, and the help text."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from utils import data
from utils.tools.runner import dispatch, plan
from utils.tools.runner.plan import KERNEL, RunError


def parse_resources(items: list[str] | None) -> dict[str, float]:
    """``["GPU=1", "MEM=4e9"]`` or ``["GPU=1,MEM=4e9"]`` as ``{"GPU": 1.0, "MEM": 4e9}``."""
    resources = {}
    for item in (part for text in items or [] for part in text.split(",") if part.strip()):
        name, sep, text = item.partition("=")
        try:
            value = float(text)
        except ValueError:
            value = 0.0
        if not sep or not name.strip() or value <= 0:
            raise RunError(f"--resources {item!r}: expected NAME=NUMBER with NUMBER > 0, "
                           "e.g. --resources GPU=1")
        resources[name.strip()] = value
    return resources


def command_text(args: argparse.Namespace) -> str:
    """The command, rebuilt from its parsed options, for the summary's heading."""
    words = ["course", "run"]
    for name in ("lessons", "dataset", "epochs"):
        if getattr(args, name):
            words += [f"--{name}", *getattr(args, name)]
    words += [f"--set {item}" for item in args.set or []]
    words += ["--out", str(args.out)] + (["--jobs", str(args.jobs)] if args.jobs != 1 else [])
    if args.scheduler:
        words += ["--scheduler", args.scheduler]
        words += ["--resources", *args.resources] if args.resources else []
    words += ["--final"] if args.final else []
    return " ".join(words + (["--force"] if args.force else []))


def _executor(args: argparse.Namespace):
    """The local pool, or the Dask cluster that --scheduler names."""
    from utils.tools.runner.executors import DaskCluster, LocalPool

    if args.jobs < 1:
        raise RunError(f"--jobs {args.jobs}: must be a whole number >= 1")
    resources = parse_resources(args.resources)
    if not args.scheduler:
        if resources:
            raise RunError("--resources: applies to Dask workers; give the cluster with --scheduler ADDRESS")
        return LocalPool(args.jobs)
    if args.jobs != 1:
        raise RunError(f"--jobs {args.jobs}: with --scheduler, the workers' threads and --resources "
                       "decide how many runs execute at once")
    return DaskCluster(args.scheduler, resources)


def _command(args: argparse.Namespace) -> int:
    executor = None
    try:
        lessons = plan.select_lessons(plan.find_lessons(Path(args.notebooks)), args.lessons)
        runs = plan.plan_runs(lessons, plan.check_values(plan.gather_values(args), lessons), args.final)
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise RunError(f"--out {out}: exists and is not a folder")
        executor = _executor(args)
        out.mkdir(parents=True, exist_ok=True)
        lock = dispatch.lock(out)
    except RunError as error:
        if executor is not None:
            executor.close()
        print(f"course run: error: {error}", file=sys.stderr)
        return 2
    try:
        return dispatch.execute(runs, out, executor, args.force, args.kernel, command_text(args))
    finally:
        if lock is not None:
            lock.close()


DESCRIPTION = """\
Execute lessons with papermill over every combination of the parameter values given.

A lesson runs once per combination of the values given for the parameters its `parameters`
cell declares. Parameters it does not declare are not passed to it and do not multiply its
runs: with `--epochs 1 5`, lesson 01 (no `epochs`) runs once per dataset, lesson 03 twice.
Parameters not given keep the notebook's own defaults. Everything is checked before anything
runs; bad input exits with status 2.

Each run goes to OUT/<folder>/<lesson>.ipynb, where <folder> names the values given, e.g.
mnist-e5-batch_size=128 (`defaults` when none were given). After every finished run
OUT/summary.md, summary.csv, summary.json and comparison.png (validation accuracy by lesson and
folder) are rewritten.

Validation decides, the test set reports, as lesson 03 teaches. Every run is a candidate: a
lesson with a `report_test` parameter runs with report_test=False and leaves the test set
untouched, so candidates are compared on validation only. Once you have chosen, run the one
setting you chose again with --final: that run, in a folder ending in `-final` (`final` when no
value was given), evaluates the test set, once, and the summary names it as the final setting.
The summary and plot cover the runs of the command that wrote them.

A failed run does not stop the others; its notebook keeps the error.
Ctrl-C or a kill keeps finished runs and the summary; the same command later skips the runs
that already succeeded with the same parameters, lesson code, course package code, Python and
framework versions and dataset files, unless --force.

Runs execute in local processes (--jobs), or on a Dask cluster (--scheduler), whose workers
need the course installed and the datasets cached, but no file system shared with this
machine: each run returns its executed notebook here. A run whose worker is lost is
executed once more, then reported failed with the cause."""

EPILOG = """\
examples:
  course run --final --out runs/course         every lesson at its defaults, test reported
  course run --lessons 03 04 --dataset mnist fashion_mnist cifar10 --epochs 1 5 \\
             --set batch_size=128 --jobs 2 --out runs/
  course run --lessons 03 --set limit=2000 --set architecture=cnn2 --set architecture=cnn3
  course run --lessons 03 --epochs 3 5 8 --out runs/epochs     candidates, on validation
  course run --lessons 03 --epochs 5 --final --out runs/epochs  the chosen one, on test, once
  course run --lessons 03 05 --dataset mnist cifar10 --scheduler tcp://10.0.0.5:8786 --resources GPU=1

exit status: 0 every run succeeded, 1 a run failed, 2 bad input, 130 interrupted."""


def add_parser(subparsers) -> None:
    """The ``course run`` command."""
    parser = subparsers.add_parser(
        "run", help="execute lessons over a matrix of parameters with papermill",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lessons", nargs="+", metavar="NN",
                        help="lessons by number or file name, e.g. --lessons 03 04 or "
                             "--lessons 03_training (default: every notebooks/NN_*.ipynb)")
    parser.add_argument("--dataset", nargs="+", metavar="NAME",
                        help=f"datasets, one run each, e.g. --dataset mnist cifar10; choices: "
                             f"{', '.join(data.dataset_names())} (default: the lesson's own)")
    parser.add_argument("--epochs", nargs="+", metavar="N",
                        help="epoch counts (whole numbers >= 1), one run each, e.g. --epochs 1 5 "
                             "(default: the lesson's own)")
    parser.add_argument("--set", action="append", metavar="NAME=VALUE",
                        help="any other parameter of the lessons' parameters cell, e.g. --set "
                             "batch_size=128 --set limit=None; VALUE is a Python literal or a word; "
                             "repeat a NAME to run each of its values")
    parser.add_argument("--out", default="runs", metavar="DIR",
                        help="output folder, e.g. --out runs/course (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="runs at once in local processes, each in its own kernel, e.g. --jobs 2 "
                             "(default: 1)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="execute the runs on the Dask cluster of this scheduler instead, e.g. "
                             "--scheduler tcp://10.0.0.5:8786 (needs the `distributed` package: "
                             "pip install 'cnn-keras-course[cluster]')")
    parser.add_argument("--resources", nargs="+", metavar="NAME=N",
                        help="with --scheduler, what each run needs of the workers' resources, e.g. "
                             "--resources GPU=1 for one run per GPU (workers started with "
                             "dask worker ADDRESS --resources GPU=1)")
    parser.add_argument("--final", action="store_true",
                        help="evaluate the test set, once, for the one setting given (one value per "
                             "parameter), e.g. --final --epochs 5 after choosing 5 epochs on validation "
                             "(default: candidates only, the test set untouched)")
    parser.add_argument("--force", action="store_true",
                        help="execute again the runs that already succeeded in DIR, e.g. --force "
                             "to time them anew (default: skip them)")
    parser.add_argument("--notebooks", default=str(plan.default_notebooks()), metavar="DIR",
                        help="folder of the lesson notebooks, e.g. --notebooks my-notebooks/ "
                             "(default: %(default)s)")
    parser.add_argument("--kernel", default=KERNEL, metavar="NAME",
                        help="Jupyter kernel, e.g. --kernel python3 (default: %(default)s)")
    parser.set_defaults(handler=_command)
