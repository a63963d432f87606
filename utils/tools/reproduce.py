"""Where the stored lesson outputs were made, and the TensorFlow settings they are made and checked with.

TensorFlow chooses CPU kernels by what the processor offers. On a CPU with AVX-512 VNNI or
bfloat16 units it turns on oneDNN's graph rewrites by itself, and oneDNN's matrix products use
the widest instructions there are. Either one adds numbers in another order, and a few epochs
of training later the printed digits differ from an AVX2 machine's. These two variables ask for
the kernels an AVX2 machine uses by default: no oneDNN rewrites, oneDNN capped at AVX2.

They are not enough on their own: two AVX2 CPUs with other cache sizes block their matrix
products differently and so add in another order too (measured: an AMD EPYC gives other digits
than the Intel Xeon that made the stored outputs, from the first epoch of a training). So
every stored notebook records ``fingerprint()`` of the machine that made it, and nbval
compares strictly only where the fingerprint matches (``notebooks/conftest.py``).

They must be set before TensorFlow is imported: ``make test``, ``make notebooks`` and the
course's test configuration set them for every process they start.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

STORED_OUTPUTS_ENV = {"TF_ENABLE_ONEDNN_OPTS": "0", "ONEDNN_MAX_CPU_ISA": "AVX2"}
# Environment variables that change TensorFlow's kernels or thread counts.
KERNEL_ENV = ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA", "TF_NUM_INTRAOP_THREADS",
              "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")
# The instruction-set flags (/proc/cpuinfo) that decide which kernels TensorFlow and oneDNN run.
ISA_PREFIXES = ("sse4", "avx", "fma", "f16c", "amx")
PACKAGES = ("tensorflow", "keras", "numpy")
# Where the notebook metadata keeps the fingerprint of the machine that made the outputs.
METADATA_KEY = "course"


def apply(env: dict | None = None) -> dict:
    """Set the variables in ``env`` (default: this process's environment) unless already set."""
    env = os.environ if env is None else env
    for key, value in STORED_OUTPUTS_ENV.items():
        env.setdefault(key, value)
    return env


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    fields = {}
    for line in text.split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def _caches() -> list[str]:
    """The first CPU's caches as "L1 Data 48K", from sysfs (empty where there is none)."""
    caches = []
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index[0-9]*")):
        try:
            level, kind, size = ((index / name).read_text().strip() for name in ("level", "type", "size"))
        except OSError:
            continue
        caches.append(f"L{level} {kind} {size}")
    return caches


def fingerprint(env: dict | None = None) -> dict:
    """What decides the floating-point order of the lessons' computations on this machine.

    CPU model, its instruction-set flags and cache sizes, the threads a process may use, the
    kernel settings in ``env`` (default: this process's environment) and the versions of
    TensorFlow, Keras and NumPy. Read without importing TensorFlow.
    """
    env = os.environ if env is None else env
    cpu = _cpuinfo()
    flags = sorted(flag for flag in cpu.get("flags", "").split() if flag.startswith(ISA_PREFIXES))
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu.get("model name") or platform.processor() or platform.machine(),
        "isa_flags": flags,
        "caches": _caches(),
        "threads": threads,
        "kernel_env": {key: env[key] for key in KERNEL_ENV if key in env},
        "versions": versions,
    }


def stored_fingerprint(notebook: dict) -> dict | None:
    """The fingerprint a notebook's outputs were made with, or None if it records none."""
    return notebook.get("metadata", {}).get(METADATA_KEY, {}).get("outputs_made_on")


def stamp(notebook: dict, made_on: dict) -> None:
    """Record in a notebook's metadata the fingerprint of the machine that made its outputs."""
    notebook.setdefault("metadata", {}).setdefault(METADATA_KEY, {})["outputs_made_on"] = made_on


def differences(stored: dict | None, current: dict) -> list[str]:
    """What differs between two fingerprints, one line each; empty when they match."""
    if not stored:
        return ["the notebook records no machine"]
    lines = []
    for key in sorted(set(stored) | set(current)):
        if stored.get(key) != current.get(key):
            lines.append(f"{key}: stored {stored.get(key)!r}, here {current.get(key)!r}")
    return lines
