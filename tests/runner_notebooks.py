"""Small lesson notebooks for the runner's tests, written into a temporary folder.

They follow the lessons' anatomy where the runner cares: a `parameters` cell, parameters
checked by ``course.check_parameters``, results recorded with ``course.record_results``.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat import v4


def write_notebook(path: Path, parameters: str, *cells: str) -> Path:
    """A notebook with a `parameters` cell and the given code cells."""
    notebook = v4.new_notebook(metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    notebook.cells = [v4.new_markdown_cell(f"# {path.stem}"),
                      v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
                      *(v4.new_code_cell(source) for source in cells)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def data_lesson(folder: Path, name: str = "01_data") -> Path:
    """Loads a dataset and records its facts: parameters dataset and seed, no epochs."""
    return write_notebook(
        folder / f"{name}.ipynb",
        'dataset = "fashion_mnist"  # mnist, fashion_mnist or cifar10\nseed = 0  # seeds the split',
        "from utils import course, data\n\n"
        "course.check_parameters(dataset=dataset, seed=seed)\n"
        "splits = data.load_dataset(dataset, limit=200, seed=seed)\n"
        "print(splits.describe())",
        f'course.record_results(lesson="{name[:2]}", dataset=dataset, label=splits.label,\n'
        "                      train_images=len(splits.x_train))",
    )


def training_lesson(folder: Path, name: str = "03_training") -> Path:
    """Trains a small dense network: parameters dataset, epochs, batch_size, limit, seed and
    report_test, which evaluates the test set only when it is True, as the lessons do."""
    return write_notebook(
        folder / f"{name}.ipynb",
        'dataset = "fashion_mnist"  # mnist, fashion_mnist or cifar10\n'
        "epochs = 2  # passes over the training set\n"
        "batch_size = 32  # images per step\n"
        "limit = 200  # images per split\n"
        "seed = 0  # seeds the split and the weights\n"
        "report_test = True  # False leaves the test set untouched",
        "from utils import course, data, models, training\n\n"
        "course.check_parameters(dataset=dataset, epochs=epochs, batch_size=batch_size, "
        "limit=limit, seed=seed, report_test=report_test)\n"
        "training.set_seed(seed)\n"
        "splits = data.load_dataset(dataset, limit=limit, seed=seed)",
        'model = models.build("dense_only", splits.spec.input_shape, splits.spec.num_classes)\n'
        "training.compile_model(model)\n"
        "history = training.train(model, splits, epochs, batch_size, verbose=0)\n"
        "test = training.evaluate(model, splits) if report_test else {}",
        f'course.record_results(lesson="{name[:2]}", dataset=dataset, epochs=epochs,\n'
        "                      params=model.count_params(),\n"
        '                      val_accuracy=round(history.history["val_accuracy"][-1], 4),\n'
        '                      **{k: round(v, 4) for k, v in test.items() if k == "test_accuracy"})',
    )


def wait_lesson(folder: Path, name: str = "02_wait") -> Path:
    """Waits ``seconds``, or until the file named by $RUNNER_TEST_RELEASE exists.

    When $RUNNER_TEST_STARTED names a folder, it first writes there a file ``NOTE-SECONDS``
    holding its kernel's process id and its parent's (the process that runs papermill); when
    $RUNNER_TEST_ENDED names one, it writes the same name there once it has waited.
    It starts quickly: it does not import the course's package, hence not TensorFlow.
    """
    return write_notebook(
        folder / f"{name}.ipynb",
        "seconds = 0.0  # the longest wait\nnote = 'x'  # any text",
        "import os\nimport time\n\n"
        'started = os.environ.get("RUNNER_TEST_STARTED", "")\n'
        "if started:\n"
        '    marker = os.path.join(started, f"{note}-{seconds}")\n'
        '    with open(marker + ".partial", "w") as stream:\n'
        '        stream.write(f"{os.getpid()} {os.getppid()}")\n'
        '    os.replace(marker + ".partial", marker)\n'
        'release = os.environ.get("RUNNER_TEST_RELEASE", "")\n'
        "deadline = time.monotonic() + seconds\n"
        "while time.monotonic() < deadline and not (release and os.path.exists(release)):\n"
        "    time.sleep(0.1)\n"
        'ended = os.environ.get("RUNNER_TEST_ENDED", "")\n'
        "if ended:\n"
        '    open(os.path.join(ended, f"{note}-{seconds}"), "w").close()\n'
        "print('waited', note, 'in the folder', os.path.basename(os.getcwd()))",
    )
