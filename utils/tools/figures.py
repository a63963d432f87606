"""Stored figures against re-rendered ones, for nbval (``notebooks/conftest.py``).

nbval compares text; it skips ``image/png``. This module compares the PNGs of a cell with
matplotlib's own image comparison (``matplotlib.testing.compare.compare_images``: the RMS of
the pixel differences, 0-255 per channel), and on a mismatch leaves the expected, actual and
diff images under ``test-artifacts/figures/``.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path

from matplotlib.testing.compare import compare_images
from matplotlib.testing.exceptions import ImageComparisonFailure

# The RMS above which a re-rendered figure counts as changed. A re-run of the same code on this
# kind of machine gives 0 on every lesson figure; a real change (another seed, another epoch
# count, a missing panel, another label) gives 2 or more. Measured in tests/test_figures.py and
# in the README's "What CI checks".
TOLERANCE = 0.5
PNG = "image/png"


@dataclass
class FigureDifference:
    """One figure of a cell that does not match: which one, how far off, where the images are."""

    index: int
    rms: float | None  # None: the sizes differ
    message: str
    images: dict[str, Path]


def pngs(outputs) -> list[bytes]:
    """The PNG images among a cell's outputs, in order, decoded."""
    found = []
    for output in outputs:
        data = output.get("data", {}) if hasattr(output, "get") else {}
        if PNG in data:
            value = data[PNG]
            found.append(base64.b64decode("".join(value) if isinstance(value, list) else value))
    return found


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def compare_figures(expected: list[bytes], actual: list[bytes], folder: Path,
                    tolerance: float = TOLERANCE) -> tuple[list[float], list[FigureDifference]]:
    """RMS of each pair of figures, and the pairs that differ by more than ``tolerance``.

    A different number of figures is a difference too. Images are written to ``folder`` only
    for the figures that differ.
    """
    rms_values: list[float] = []
    differences: list[FigureDifference] = []
    if len(expected) != len(actual):
        folder.mkdir(parents=True, exist_ok=True)
        images = {}
        for kind, figures in (("expected", expected), ("actual", actual)):
            for k, figure in enumerate(figures):
                path = folder / f"figure-{k}-{kind}.png"
                path.write_bytes(figure)
                images[f"{kind} {k}"] = path
        differences.append(FigureDifference(
            -1, None, f"the cell drew {len(actual)} figure(s); the stored outputs have {len(expected)}",
            images))
        return rms_values, differences
    for k, (want, got) in enumerate(zip(expected, actual, strict=True)):
        if want == got:
            rms_values.append(0.0)
            continue
        folder.mkdir(parents=True, exist_ok=True)
        expected_path, actual_path = folder / f"figure-{k}-expected.png", folder / f"figure-{k}-actual.png"
        expected_path.write_bytes(want)
        actual_path.write_bytes(got)
        try:  # tol=0: the RMS of any difference, judged against the tolerance below
            result = compare_images(str(expected_path), str(actual_path), tol=0, in_decorator=True)
        except ImageComparisonFailure as error:  # the sizes differ
            differences.append(FigureDifference(k, None, f"figure {k}: {error}",
                                                {"expected": expected_path, "actual": actual_path}))
            continue
        rms = 0.0 if result is None else float(result["rms"])
        rms_values.append(rms)
        if rms <= tolerance:
            for path in (expected_path, actual_path, *([Path(result["diff"])] if result else [])):
                path.unlink(missing_ok=True)
        else:
            differences.append(FigureDifference(
                k, rms, f"figure {k}: RMS {rms:.3f} > tolerance {tolerance}",
                {"expected": expected_path, "actual": actual_path, "diff": Path(result["diff"])}))
    return rms_values, differences
