"""The `course` command: `course data …`, `course run …`, `course lessons …`, `course exercises …`.

Each subcommand lives with the module it drives; this file only dispatches.
"""

from __future__ import annotations

import argparse
import sys


def _data_command(args: argparse.Namespace) -> int:
    from utils import data

    try:
        if args.action == "status":
            print(f"Keras cache: {data.keras_home() / 'datasets'}")
            for name, state in data.status_rows():
                print(f"  {name:<14} {state}")
        elif args.action == "stage":
            for path in data.stage(args.dataset, args.source):
                print(f"staged {path}")
            print(f"{data.get_spec(args.dataset).title}: staged and verified")
        elif args.action == "prepare":
            for name in args.datasets:
                print(data.prepare(name))
    except data.DataError as error:
        print(f"course data: error: {error}", file=sys.stderr)
        return 2
    return 0


def _add_data_parser(subparsers) -> None:
    from utils.data import DEBIAN_FASHION_MNIST, dataset_names

    parser = subparsers.add_parser(
        "data", help="check, stage or prepare the datasets in the Keras cache",
        description="Manage the course's datasets in the Keras cache ($KERAS_HOME or ~/.keras).",
        epilog=f"example: course data stage fashion_mnist --from {DEBIAN_FASHION_MNIST}")
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("status", help="show which datasets are cached and verified")
    stage = actions.add_parser("stage", help="copy a local copy into the Keras cache, verified")
    stage.add_argument("dataset", choices=dataset_names())
    stage.add_argument("--from", dest="source", required=True, metavar="DIR",
                       help="folder holding the dataset's original files")
    prepare = actions.add_parser(
        "prepare", help="cached, else a known local copy (Debian's package), else the Keras download")
    prepare.add_argument("datasets", nargs="+", choices=dataset_names(), metavar="DATASET",
                         help=f"one or more of: {', '.join(dataset_names())}")
    parser.set_defaults(handler=_data_command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="course", description="Tools of the CNN course: data, lesson runs, lesson pages.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_data_parser(subparsers)
    from utils.tools import exercises, lessons
    from utils.tools.runner import cli as runner_cli

    runner_cli.add_parser(subparsers)
    lessons.add_parser(subparsers)
    exercises.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
