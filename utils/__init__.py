"""Shared code of the CNN course: data, models, training and plots, as the lessons use them.

Each public function's docstring names the lesson that introduces it. The tooling for
maintainers and instructors (the `course` command and its lesson runner) is in ``utils.tools``.
"""

import logging
import os
import sys

__version__ = "0.1.0"

# Keep TensorFlow's C++ log lines out of notebooks; set before TensorFlow is imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with the process's stderr muted.

    Its start-up notes (oneDNN, CUDA drivers) are written to file descriptor 2 before
    its log level applies, and a notebook kernel shows that descriptor in the cell.
    Python errors still surface: they are raised after stderr is restored.
    """
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        tf.config.list_physical_devices()  # the CUDA probe logs once, here
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    logging.getLogger("tensorflow").addFilter(_no_retracing_advice)


def _no_retracing_advice(record: logging.LogRecord) -> bool:
    """Drop TensorFlow's advice against tracing functions in a loop: lessons build many small
    models on purpose, and each traces its own training step once."""
    return "triggered tf.function retracing" not in record.getMessage()


if "ipykernel" in sys.modules:  # only in notebooks, where stderr shows up in the output
    import_tensorflow_quietly()
