"""The TensorFlow settings that the stored outputs are made and checked with."""

import os
import subprocess
import sys

from utils.tools import reproduce


def test_apply_sets_each_variable_and_keeps_one_already_set():
    env = reproduce.apply({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"})
    assert env == {"TF_ENABLE_ONEDNN_OPTS": "0", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}


def test_this_test_process_and_its_children_run_with_them():
    for key, value in reproduce.STORED_OUTPUTS_ENV.items():
        assert os.environ[key] == value  # set by tests/conftest.py before TensorFlow is imported
    child = subprocess.run([sys.executable, "-c", "import os; print(os.environ['ONEDNN_MAX_CPU_ISA'])"],
                           capture_output=True, text=True, check=True)
    assert child.stdout.strip() == "AVX2"
