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


def test_the_fingerprint_says_where_outputs_are_made():
    found = reproduce.fingerprint({"TF_ENABLE_ONEDNN_OPTS": "0", "HOME": "/root"})
    assert found["cpu"] and found["threads"] >= 1
    assert found["kernel_env"] == {"TF_ENABLE_ONEDNN_OPTS": "0"}  # only what changes the kernels
    assert set(found["versions"]) == {"tensorflow", "keras", "numpy"} and found["versions"]["keras"]
    if os.path.exists("/proc/cpuinfo"):
        assert "avx2" in found["isa_flags"] or "sse4_2" in found["isa_flags"]
        assert all(flag.startswith(reproduce.ISA_PREFIXES) for flag in found["isa_flags"])
    if os.path.isdir("/sys/devices/system/cpu/cpu0/cache"):
        assert any(cache.startswith("L2 ") for cache in found["caches"])


def test_fingerprints_match_only_when_every_part_does():
    here = reproduce.fingerprint()
    assert reproduce.differences(dict(here), here) == []
    other = {**here, "caches": ["L1 Data 32K", "L2 Unified 512K"],
             "kernel_env": {"TF_ENABLE_ONEDNN_OPTS": "1"}}
    lines = reproduce.differences(other, here)
    assert [line.split(":")[0] for line in lines] == ["caches", "kernel_env"]
    assert reproduce.differences(None, here) == ["the notebook records no machine"]


def test_a_stamp_is_kept_in_the_notebook_metadata():
    notebook = {"metadata": {"kernelspec": {"name": "python3"}}, "cells": []}
    assert reproduce.stored_fingerprint(notebook) is None
    reproduce.stamp(notebook, {"cpu": "x"})
    assert reproduce.stored_fingerprint(notebook) == {"cpu": "x"}
    assert notebook["metadata"]["kernelspec"] == {"name": "python3"}
