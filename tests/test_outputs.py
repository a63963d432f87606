"""The tolerant comparison of CPU-dependent cells: what it lets through and what it still catches."""

from __future__ import annotations

import math

from utils.tools import outputs

import pytest

LOG = ("Epoch 1/2\n422/422 - TIME - TIME/step - accuracy: 0.8187 - loss: 0.4980 - val_accuracy: 0.8588\n"
       "Epoch 2/2\n422/422 - TIME - TIME/step - accuracy: 0.8702 - loss: 0.3551 - val_accuracy: 0.8801\n")
RESULT = "cnn3: 93,322 parameters, validation accuracy 0.9103, 37 of 100 images\n"
TOLERANCE = {"atol": 0.004, "rtol": 0.1}
RESULTS_JSON = "application/vnd.cnn-course.results+json"


def texts(stdout: str) -> dict[str, list[str]]:
    return {"stdout": [stdout]}


@pytest.mark.parametrize("number, unit", [("0.72", 0.01), ("37", 1.0), ("93,322", 1.0), ("1.2e-04", 1e-5),
                                          ("-3.50", 0.01)])
def test_one_unit_of_the_last_printed_digit(number, unit):
    assert math.isclose(outputs.last_digit_unit(number), unit)


def test_numbers_are_taken_out_of_a_line_and_spaces_collapsed():
    skeleton, numbers = outputs.split_numbers("| cnn3  |  93,322 | 0.9103 | seed 2 | conv2d_1 |")
    assert skeleton == "| cnn3 | # | # | seed # | conv2d_1 |"  # a number inside a name stays text
    assert numbers == ["93,322", "0.9103", "2"]


def test_a_score_needs_an_absolute_tolerance_any_other_number_a_relative_one():
    assert outputs.needed("0.9103", "0.9104") == ("atol", 0.0)  # rounding of the last digit
    which, amount = outputs.needed("0.9103", "0.9003")
    assert which == "atol" and math.isclose(amount, 0.01 - 0.0001)
    which, amount = outputs.needed("+0.0230", "+0.0208")  # a difference of two scores
    assert which == "atol" and math.isclose(amount, 0.0022 - 0.0001)
    which, amount = outputs.needed("1.5778", "1.5759")  # a loss above 1
    assert which == "rtol" and math.isclose(amount, (0.0019 - 0.0001) / 1.5778)
    assert outputs.needed("37", "40") == ("rtol", pytest.approx(2 / 40))  # a count
    assert outputs.needed("0", "3") == ("rtol", pytest.approx(2 / 3))
    assert outputs.needed("0.0", "0.0") == ("atol", 0.0)


def test_a_training_log_is_left_out_and_the_rest_compared_within_the_tolerance():
    other_log = LOG.replace("0.8187", "0.8201").replace("0.3551", "0.3602")
    moved = RESULT.replace("0.9103", "0.9121").replace("37 of", "40 of")
    result = outputs.compare_texts(texts(LOG + RESULT), texts(other_log + moved), TOLERANCE)
    assert result.ok, result.problems
    assert result.masked_lines == 4 and result.within_tolerance == 4
    assert result.needed == {"atol": pytest.approx(0.0017), "rtol": pytest.approx(2 / 40)}


def test_an_early_stopped_training_may_stop_at_another_epoch():
    longer = LOG + "Epoch 3/5\n422/422 - TIME - TIME/step - accuracy: 0.88 - loss: 0.33\n"
    longer += "Epoch 3: early stopping\nRestoring model weights from the end of the best epoch: 2.\n"
    assert outputs.compare_texts(texts(LOG + RESULT), texts(longer + RESULT), TOLERANCE).ok


@pytest.mark.parametrize("changed, why", [
    (RESULT.replace("0.9103", "0.9003"), "beyond the absolute tolerance for a score"),  # a result moved
    (RESULT.replace("93,322", "134,794"), "beyond the relative tolerance"),  # another model
    (RESULT.replace("validation", "test"), "the text differs"),  # another word
    (RESULT.replace("37 of 100", "37 of 100 of 100"), "the text differs"),  # another number of numbers
    (RESULT + "one more line\n", "lines stored"),
], ids=["result moved", "parameter count", "word", "numbers", "extra line"])
def test_what_the_tolerant_comparison_still_catches(changed, why):
    result = outputs.compare_texts(texts(LOG + RESULT), texts(LOG + changed), TOLERANCE)
    assert not result.ok and why in result.problems[0], result.problems


def test_another_kind_or_number_of_outputs_fails():
    assert not outputs.compare_texts(texts(RESULT), {"stderr": [RESULT]}, outputs.UNLIMITED).ok
    assert not outputs.compare_texts({"text/plain": ["1", "2"]}, {"text/plain": ["1"]}, outputs.UNLIMITED).ok


def test_a_cells_outputs_as_texts():
    cell_outputs = [
        {"output_type": "stream", "name": "stdout", "text": ["a 1\n", "b "]},
        {"output_type": "display_data", "data": {"image/png": "iVBOR", "text/plain": ["<Figure>"]}},
        {"output_type": "stream", "name": "stdout", "text": "2\n"},
        {"output_type": "display_data", "data": {RESULTS_JSON: {"b": 0.5, "a": 1}}},
    ]
    found = outputs.texts(cell_outputs)
    assert found["stdout"] == ["a 1\nb 2\n"]  # however the stream was split
    assert found["text/plain"] == ["<Figure>"] and "image/png" not in found
    assert found[RESULTS_JSON] == ['{\n "a": 1,\n "b": 0.5\n}']


@pytest.mark.parametrize("value, rounded", [(0.01234, 0.013), (0.02, 0.02), (12.31, 13.0), (0.0, 0.0)])
def test_round_up_to_two_significant_digits(value, rounded):
    assert math.isclose(outputs.round_up(value), rounded)


def test_tolerances_are_the_largest_measured_difference_widened():
    measured = [{"atol": 0.0022, "rtol": 0.0}, {"atol": 0.0011, "rtol": 0.012}]
    tolerance = outputs.tolerance_from(measured, [[0.0, 6.2], [0.1, 3.0]], {"atol": 0.001, "rtol": 0.001})
    def widened(value):
        return outputs.round_up(outputs.FACTOR * value)
    assert tolerance == {"atol": widened(0.0022), "rtol": widened(0.012),
                         "figure_rms": [max(0.5, widened(0.1)), widened(6.2)]}
    assert tolerance["atol"] > 0.0022 and tolerance["rtol"] > 0.012 and tolerance["figure_rms"][1] > 6.2


def test_the_typical_change_is_the_floor_and_counts_that_never_moved_stay_exact():
    cells = [[{"atol": 0.002, "rtol": 0.0}], [{"atol": 0.01, "rtol": 0.1}, {"atol": 0.0, "rtol": 0.3}],
             [{"atol": 0.0, "rtol": 0.0}], [{"atol": 0.03, "rtol": 0.0}]]
    typical = outputs.typical_change(cells)
    assert typical == {"atol": 0.01, "rtol": 0.3}  # medians over the cells where something moved
    lucky = outputs.tolerance_from([{"atol": 0.0005, "rtol": 0.0}], [], typical)
    assert lucky == {"atol": outputs.round_up(outputs.FACTOR * 0.01), "rtol": 0.0, "figure_rms": []}
    counted = outputs.tolerance_from([{"atol": 0.0, "rtol": 0.05}], [], typical)
    assert counted["rtol"] == outputs.round_up(outputs.FACTOR * 0.3)
    assert outputs.typical_change([]) == {"atol": 0.0, "rtol": 0.0}


def test_cell_tolerances_live_in_the_cell_metadata():
    cell = {"cell_type": "code", "metadata": {"tags": ["x"]}}
    assert outputs.cell_tolerance(cell) is None
    outputs.set_cell_tolerance(cell, {"rtol": 0.02, "figure_rms": []})
    assert outputs.cell_tolerance(cell) == {"rtol": 0.02, "figure_rms": []}
    outputs.set_cell_tolerance(cell, None)
    assert cell["metadata"] == {"tags": ["x"]}


def test_an_unchecked_line_is_left_out_and_only_that_line():
    stored = texts(RESULT + "overlap: no remedy and dropout\n")
    computed = texts(RESULT + "overlap: no remedy and dropout; dropout and batch norm\n")
    unchecked = {**TOLERANCE, "unchecked": [{"line": "overlap:", "why": "turns on the third decimal"}]}
    assert not outputs.compare_texts(stored, computed, TOLERANCE).ok
    result = outputs.compare_texts(stored, computed, unchecked)
    assert result.ok and result.masked_lines == 1
    moved = texts(RESULT.replace("0.9103", "0.9003") + "overlap: none\n")
    assert not outputs.compare_texts(stored, moved, unchecked).ok  # the other lines are still compared


def test_an_unchecked_line_outlives_runs_that_did_not_move_its_cell():
    """A hand-written ``unchecked`` line stays when a re-measurement finds the cell unchanged; every
    number of the cell must then come out as stored (within one unit of its last digit)."""
    unchecked = [{"line": "| far", "why": "which strength wins turns on a few validation images"}]
    cell = {"cell_type": "code", "outputs": [{"output_type": "stream", "name": "stdout", "text": RESULT}]}
    tolerance = outputs.unchanged_tolerance(cell, unchecked)
    assert tolerance == {"unchecked": unchecked, "atol": 0.0, "rtol": 0.0, "figure_rms": []}
    flipped = texts(RESULT + "| far | 10 |\n")
    assert outputs.compare_texts(texts(RESULT + "| far | 1 |\n"), flipped, tolerance).ok
    assert not outputs.compare_texts(texts(RESULT), texts(RESULT.replace("0.9103", "0.9105")), tolerance).ok


def test_widening_keeps_each_kind_at_the_larger_of_the_recorded_and_the_measured():
    recorded = {"atol": 0.03, "rtol": 0.0, "figure_rms": [4.0, 0.5],
                "unchecked": [{"line": "verdict:", "why": "close rows trade places"}]}
    measured = {"atol": 0.02, "rtol": 0.05, "figure_rms": [2.0, 1.5]}
    assert outputs.wider(recorded, measured) == {**recorded, "rtol": 0.05, "figure_rms": [4.0, 1.5]}
    assert outputs.wider(None, measured) == measured and outputs.wider(recorded, None) == recorded
    redrawn = {"atol": 0.01, "rtol": 0.0, "figure_rms": [1.0]}  # another number of figures: the new ones
    assert outputs.wider(recorded, redrawn)["figure_rms"] == [1.0]


def test_a_tolerance_that_was_not_measured_is_zero():
    moved = texts(RESULT.replace("0.9103", "0.9105"))
    result = outputs.compare_texts(texts(RESULT), moved, {"figure_rms": []})
    assert not result.ok and "beyond the absolute tolerance for a score 0" in result.problems[0]
