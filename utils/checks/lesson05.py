"""Checks of lesson 05's exercises: a penalty's strength chosen on validation, and early stopping by hand."""

from __future__ import annotations

from utils.checks.feedback import exercise, expect

import numpy as np


def _run(best, last=None, penalty=0.0, train=0.3, accuracy=0.8) -> dict[str, list[float]]:
    """One seed's history over 3 epochs: its lowest validation cross-entropy ``best`` in epoch 2."""
    last = best + 0.1 if last is None else last
    val_cross_entropy = [best + 0.3, best, last]
    return {"loss": [1.0 + penalty, 0.6 + penalty, train + penalty], "cross_entropy": [1.0, 0.6, train],
            "val_loss": [value + penalty for value in val_cross_entropy],
            "val_cross_entropy": val_cross_entropy,
            "accuracy": [0.6, 0.75, 0.9], "val_accuracy": [0.6, accuracy, accuracy - 0.01]}


def _seeds(bests, **options):
    return [_run(best, **options) for best in bests]


# Strength -> one history per seed. Each sweep's comment names the wrong choices it rejects.
VISIBLE_SWEEPS = [
    {  # different numbers of seeds; the penalty grows with the strength: sum, val_loss
        1e-4: _seeds([0.50, 0.52, 0.54], penalty=0.01),
        1e-3: _seeds([0.49, 0.53], penalty=0.05),
        1e-2: _seeds([0.55], penalty=0.20),
    },
    {  # first seed, last seed, best single seed
        3e-4: _seeds([0.40, 0.62, 0.60]),
        3e-3: _seeds([0.53, 0.50, 0.51]),
        3e-2: _seeds([0.60, 0.56, 0.45]),
    },
    {  # median, last epoch, training loss, validation accuracy
        5e-4: [_run(0.45, last=0.47, train=0.1, accuracy=0.85),
               _run(0.46, last=0.48, train=0.1, accuracy=0.85),
               _run(0.70, last=0.72, train=0.1, accuracy=0.85)],
        5e-3: _seeds([0.50, 0.51, 0.52], last=0.61),
    },
]
HIDDEN_SWEEPS = [
    {  # the largest strength wins, though its reported loss is the highest; training loss, accuracy
        1e-5: _seeds([0.62, 0.63, 0.61], train=0.1),
        1e-4: _seeds([0.60, 0.61, 0.62], penalty=0.02, accuracy=0.86),
        1e-3: _seeds([0.55, 0.56], penalty=0.10),
    },
    {  # one bad seed: the median, the best seed and the first seed point elsewhere
        2e-4: [_run(0.45, last=0.50), _run(0.40, last=0.46), _run(0.95, last=0.99)],
        2e-3: _seeds([0.44, 0.53, 0.54], last=0.60),
        2e-2: _seeds([0.43, 0.70, 0.72], last=0.80),
    },
]


def _kept(histories, key="val_cross_entropy") -> float:
    return float(np.mean([min(history[key]) for history in histories]))


def _wrong_choices(sweep) -> list[tuple[object, str]]:
    """(strength, why) for each plausible wrong way to choose, in the order they are diagnosed."""
    def lowest(score):
        return min(sweep, key=lambda strength: score(sweep[strength]))

    return [
        (lowest(lambda runs: _kept(runs, "val_loss")),
         "it has the lowest mean val_loss, which includes the penalty; compare val_cross_entropy"),
        (lowest(lambda runs: np.mean([h["val_cross_entropy"][-1] for h in runs])),
         "it is the lowest at the last epoch, but each run kept its best epoch's weights"),
        (lowest(lambda runs: sum(min(h["val_cross_entropy"]) for h in runs)),
         "it has the lowest sum over its seeds; the strengths ran different numbers of seeds: average"),
        (lowest(lambda runs: np.median([min(h["val_cross_entropy"]) for h in runs])),
         "it has the lowest median over the seeds; take the mean"),
        (lowest(lambda runs: min(min(h["val_cross_entropy"]) for h in runs)),
         "it has the best single seed; average over the seeds"),
        (lowest(lambda runs: min(runs[0]["val_cross_entropy"])), "it is the best on the first seed only"),
        (lowest(lambda runs: min(runs[-1]["val_cross_entropy"])), "it is the best on the last seed only"),
        (lowest(lambda runs: np.mean([h["cross_entropy"][-1] for h in runs])),
         "it has the lowest training loss, which says nothing about new images"),
        (lowest(lambda runs: -np.mean([max(h["val_accuracy"]) for h in runs])),
         "it has the highest validation accuracy; the choice is by validation cross-entropy"),
    ]


@exercise("05.1")
def exercise_05_1(choose_l2, hidden=False):
    """Ask a learner's function to choose an L2 strength in sweeps it has not seen."""
    import copy

    sweeps = VISIBLE_SWEEPS + (HIDDEN_SWEEPS if hidden else [])
    choices = []
    for sweep in sweeps:
        chosen = choose_l2(copy.deepcopy(sweep))
        strengths = ", ".join(f"{strength:g}" for strength in sweep)
        expect(isinstance(chosen, (int, float, np.floating)) and any(chosen == key for key in sweep),
               f"among the strengths {strengths}, your function returned {chosen!r}, "
               "expected one of the strengths (the sweep's keys)")
        choices.append(chosen)
    for sweep, chosen in zip(sweeps, choices, strict=True):
        means = {strength: _kept(runs) for strength, runs in sweep.items()}
        expected = min(means, key=means.get)
        if chosen == expected:
            continue
        # the mistake that explains every choice the function made
        reasons = [reason for index, (_, reason) in enumerate(_wrong_choices(sweep))
                   if all(_wrong_choices(other)[index][0] == choice
                          for other, choice in zip(sweeps, choices, strict=True))]
        why = f": {reasons[0]}" if reasons else ""
        strengths = ", ".join(f"{strength:g}" for strength in sweep)
        expect(False, f"among the strengths {strengths}, you chose {chosen:g}, whose kept models have a "
                      f"mean validation cross-entropy of {means[chosen]:.3f}; {expected:g} has "
                      f"{means[expected]:.3f}{why}")
    return f"It chooses by the kept models' mean validation cross-entropy in {len(sweeps)} sweeps"


STOPPING_CASES = [
    ([1.0, 0.8, 0.7, 0.72, 0.75, 0.71, 0.9, 0.95], 3),
    ([0.5, 0.5, 0.5, 0.4, 0.3], 2),
    ([0.9, 0.8, 0.7, 0.6, 0.5], 2),
    ([0.6, 0.4, 0.45, 0.35, 0.5, 0.52, 0.3], 2),
    ([0.3, 0.4], 1),
]
HIDDEN_STOPPING_CASES = [
    ([0.4, 0.4, 0.4], 1),
    ([0.9, 0.1], 5),
    ([1.0, 0.9, 0.95, 0.96, 0.97, 0.5], 3),
    ([0.8, 0.7, 0.6, 0.61, 0.59, 0.62, 0.63, 0.64], 3),
]


def stopping_reference(val_losses: list[float], patience: int) -> tuple[int, int]:
    """(epochs run, epoch whose weights are restored), 1-based, as keras.callbacks.EarlyStopping does."""
    best, best_epoch, wait = np.inf, 0, 0
    for epoch, loss in enumerate(val_losses, start=1):
        if loss < best:
            best, best_epoch, wait = loss, epoch, 0
        else:
            wait += 1
            if wait >= patience:
                return epoch, best_epoch
    return len(val_losses), best_epoch


@exercise("05.2")
def exercise_05_2(early_stopping, hidden=False):
    """Compare a learner's early stopping with EarlyStopping's on hidden validation curves."""
    for val_losses, patience in STOPPING_CASES + (HIDDEN_STOPPING_CASES if hidden else []):
        found = early_stopping(list(val_losses), patience)
        where = f"for validation losses {val_losses} and patience {patience}"
        expect(isinstance(found, tuple | list) and len(found) == 2,
               f"{where}, your function returned {found!r}, expected two epoch numbers (stopped, restored)")
        stopped, restored = stopping_reference(val_losses, patience)
        expect(found[0] == stopped, f"{where}, you stop after epoch {found[0]}, expected after {stopped}")
        expect(found[1] == restored,
               f"{where}, you restore the weights of epoch {found[1]}, expected those of epoch {restored} "
               "(epochs count from 1)")
    cases = len(STOPPING_CASES) + (len(HIDDEN_STOPPING_CASES) if hidden else 0)
    return f"It stops and restores as EarlyStopping does on {cases} curves"
