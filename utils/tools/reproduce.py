"""The TensorFlow settings under which the stored lesson outputs are made and checked.

TensorFlow chooses CPU kernels by what the processor offers. On a CPU with AVX-512 VNNI or
bfloat16 units it turns on oneDNN's graph rewrites by itself, and oneDNN's matrix products use
the widest instructions there are. Either one adds numbers in another order, and a few epochs
of training later the printed digits differ from an AVX2 machine's. These two variables ask for
the kernels an AVX2 machine uses by default: no oneDNN rewrites, oneDNN capped at AVX2.

Measured on an AVX2 machine: the same digits with and without them (they change nothing there),
and other digits with the cap lowered to AVX (so the cap takes effect). Whether an AVX-512
machine then gives the same digits depends also on its cache sizes, which set how TensorFlow
blocks its matrix products; nbval is what tells.

They must be set before TensorFlow is imported: ``make test``, ``make notebooks`` and the
course's test configuration set them for every process they start.
"""

from __future__ import annotations

import os

STORED_OUTPUTS_ENV = {"TF_ENABLE_ONEDNN_OPTS": "0", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def apply(env: dict | None = None) -> dict:
    """Set the variables in ``env`` (default: this process's environment) unless already set."""
    env = os.environ if env is None else env
    for key, value in STORED_OUTPUTS_ENV.items():
        env.setdefault(key, value)
    return env
