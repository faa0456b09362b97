"""lstmctl.budget: the one budget the port readers and graph runners share."""

import pytest

from lstmctl import budget
from lstmctl.errors import LstmctlError


def test_within_budget_passes_values_through():
    assert budget.check("nodes", 10, "f.onnx") == 10
    assert budget.check_shape([2, 3, 0], "f.onnx: tensor 'w'") == (2, 3, 0)


def test_over_budget_names_file_budget_and_value():
    with pytest.raises(LstmctlError) as e:
        budget.check("nodes", budget.limit("nodes") + 1, "f.onnx")
    assert str(e.value) == f"f.onnx: {budget.limit('nodes') + 1} nodes or operators in one file is over lstmctl's budget of 2**18"
    assert e.value.exit_code == 3


def test_huge_integers_are_not_printed_digit_by_digit():
    with pytest.raises(LstmctlError) as e:
        budget.check_shape([10**5000], "f.pt: tensor 'x'")
    assert "an integer of 16610 bits" in str(e.value) and len(str(e.value)) < 200


@pytest.mark.parametrize("shape, said", [([-1, 3], "dimension -1 is negative"), ([1 << 14, 1 << 14, 1 << 14], "elements of one tensor is over"), ([1] * 33, "33 dimensions of one tensor"), ([1.5], "a dimension is float")])
def test_bad_shapes_refused_before_allocation(shape, said):
    with pytest.raises(LstmctlError, match=said):
        budget.check_shape(shape, "f")


def test_op_shapes_use_the_op_budget():
    budget.check_shape([1 << 13, 1 << 13], "f", "op_elements")  # 2**26: at the cap
    with pytest.raises(LstmctlError, match="elements one operator computes is over lstmctl's budget of 2\\*\\*26"):
        budget.check_shape([1 << 13, (1 << 13) + 1], "f", "op_elements")


def test_tally_raises_when_the_running_total_passes():
    t = budget.Tally("f.pt")
    t.add("objects", budget.limit("objects"))
    with pytest.raises(LstmctlError, match="f.pt: 2097153 objects one pickle builds"):
        t.add("objects")
