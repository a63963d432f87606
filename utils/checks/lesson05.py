"""Checks of lesson 05's exercises: a variant chosen on validation, and early stopping by hand."""

from __future__ import annotations

from utils.checks.feedback import exercise, expect

import numpy as np


def _history(loss, val_loss, accuracy, val_accuracy) -> dict[str, list[float]]:
    return {"loss": loss, "val_loss": val_loss, "accuracy": accuracy, "val_accuracy": val_accuracy}


def _experiments(hidden=False) -> list[dict[str, list[dict]]]:
    """Hidden experiments: variant name -> one history per seed (3 epochs each)."""
    return _VISIBLE + (_HIDDEN if hidden else [])


def _final(val_loss, loss=0.3, val_accuracy=0.8, middle=0.6):
    return _history([0.9, 0.5, loss], [0.9, middle, val_loss], [0.6, 0.7, 0.8], [0.6, 0.7, val_accuracy])


_HIDDEN = [
    {  # different numbers of seeds: the sum and the best single seed point elsewhere
        "one seed": [_final(0.50)],
        "three seeds": [_final(0.30, loss=0.05), _final(0.31, loss=0.05), _final(0.32, loss=0.05)],
        "two seeds": [_final(0.60, val_accuracy=0.95), _final(0.20, val_accuracy=0.95)],
    },
    {  # the median and the mean disagree
        "steady": [_final(0.40, middle=0.1), _final(0.41), _final(0.42)],
        "one bad seed": [_final(0.90), _final(0.30), _final(0.31)],
    },
]
_VISIBLE = [
        {  # lowest training loss, best single epoch and best first seed all point elsewhere
            "no remedy": [
                _history([0.9, 0.3, 0.05], [0.8, 0.55, 0.80], [0.7, 0.9, 0.99], [0.72, 0.80, 0.82]),
                _history([0.9, 0.3, 0.06], [0.8, 0.60, 0.85], [0.7, 0.9, 0.99], [0.72, 0.79, 0.81])],
            "dropout": [
                _history([1.0, 0.6, 0.40], [0.9, 0.70, 0.62], [0.6, 0.8, 0.86], [0.70, 0.77, 0.80]),
                _history([1.0, 0.6, 0.42], [0.9, 0.72, 0.66], [0.6, 0.8, 0.85], [0.70, 0.78, 0.79])],
            "batch norm": [
                _history([0.5, 0.1, 0.01], [0.6, 0.70, 0.90], [0.8, 0.97, 1.0], [0.78, 0.80, 0.84]),
                _history([0.5, 0.1, 0.02], [0.6, 0.72, 0.95], [0.8, 0.97, 1.0], [0.78, 0.81, 0.83])],
            "augmentation": [
                _history([1.2, 0.9, 0.80], [1.0, 0.80, 0.58], [0.5, 0.7, 0.72], [0.60, 0.70, 0.74]),
                _history([1.2, 0.9, 0.80], [1.0, 0.80, 0.75], [0.5, 0.7, 0.71], [0.60, 0.69, 0.73])],
            "wider": [
                _history([0.7, 0.2, 0.10], [0.7, 0.62, 0.70], [0.8, 0.9, 0.97], [0.75, 0.83, 0.86]),
                _history([0.7, 0.2, 0.11], [0.7, 0.63, 0.72], [0.8, 0.9, 0.97], [0.75, 0.83, 0.86])],
        },
        {  # two variants, three seeds
            "small": [_history([0.6, 0.5, 0.4], [0.6, 0.5, 0.45], [0.8, 0.8, 0.9], [0.8, 0.81, 0.82])] * 2
            + [_history([0.6, 0.5, 0.4], [0.6, 0.5, 0.47], [0.8, 0.8, 0.9], [0.8, 0.81, 0.82])],
            "wide": [
                _history([0.5, 0.3, 0.2], [0.6, 0.45, 0.44], [0.8, 0.9, 0.95], [0.8, 0.83, 0.84]),
                _history([0.5, 0.3, 0.2], [0.6, 0.45, 0.50], [0.8, 0.9, 0.95], [0.8, 0.83, 0.84]),
                _history([0.5, 0.3, 0.2], [0.6, 0.45, 0.49], [0.8, 0.9, 0.95], [0.8, 0.83, 0.84])],
        },
]


def _mean_final(runs, key="val_loss") -> float:
    return float(np.mean([history[key][-1] for history in runs]))


@exercise("05.1")
def exercise_05_1(choose_variant, hidden=False):
    """Ask a learner's function to choose among hidden experiments' variants."""
    import copy

    for experiment in _experiments(hidden):
        chosen = choose_variant(copy.deepcopy(experiment))
        means = {name: _mean_final(runs) for name, runs in experiment.items()}
        expected = min(means, key=means.get)
        variants = ", ".join(repr(name) for name in experiment)
        expect(chosen in experiment,
               f"among {variants}, your function returned {chosen!r}, expected the name of a variant")
        if chosen == expected:
            continue
        why = ""
        if chosen == min(experiment, key=lambda name: _mean_final(experiment[name], "loss")):
            why = ": it has the lowest training loss, which says nothing about new images"
        elif chosen == max(experiment, key=lambda name: _mean_final(experiment[name], "val_accuracy")):
            why = ": it has the highest validation accuracy; the lesson decides by validation loss"
        elif chosen == min(experiment, key=lambda name: experiment[name][0]["val_loss"][-1]):
            why = ": it is the best on the first seed only; average over the seeds"
        elif chosen == min(experiment, key=lambda name: min(min(h["val_loss"]) for h in experiment[name])):
            why = ": it has the lowest validation loss of any epoch; the models you keep are the final ones"
        elif chosen == min(experiment, key=lambda name: sum(h["val_loss"][-1] for h in experiment[name])):
            why = (": it has the lowest sum over its seeds; the variants have different numbers of seeds: "
                   "average")
        elif chosen == min(experiment, key=lambda name: np.median(
                [h["val_loss"][-1] for h in experiment[name]])):
            why = ": it has the lowest median over the seeds; the lesson takes the mean"
        elif chosen == min(experiment, key=lambda name: min(h["val_loss"][-1] for h in experiment[name])):
            why = ": it has the best single seed; average over the seeds"
        expect(False, f"among {variants}, you chose {chosen!r}, whose mean final validation loss is "
                      f"{means[chosen]:.3f}; {expected!r} has {means[expected]:.3f}{why}")
    return "It chooses by mean final validation loss in hidden experiments"


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
    return f"It stops and restores as EarlyStopping does on {len(STOPPING_CASES)} hidden curves"
