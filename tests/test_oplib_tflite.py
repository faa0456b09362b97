"""lstmctl.oplib's TFLite ops (oplib/tflite.py, oplib/quantized.py) on hand-worked cases: TF's
StridedSlice masks, LiteRT's per-row input quantization (its rounding: half away from zero) and
hybrid products, DEQUANTIZE; and their budget refusals."""

import numpy as np
import pytest

from lstmctl import budget
from lstmctl.errors import LstmctlError
from lstmctl.oplib import quantized, tflite

X = np.arange(24).reshape(2, 3, 4)


@pytest.mark.parametrize(
    "begin, end, strides, masks, want",
    [
        ([0, -1, 0], [0, 0, 0], [1, 1, 1], {"begin_mask": 0b101, "end_mask": 0b101, "shrink_axis_mask": 0b010}, X[:, -1, :]),  # Keras's last step
        ([-1, 0, 0], [0, 2, 4], [1, 1, 1], {"shrink_axis_mask": 0b001}, X[-1, 0:2, 0:4]),  # time-major last step
        ([0, 1], [0, 3], [1, 1], {"ellipsis_mask": 0b01}, X[..., 1:3]),
        ([0, 0], [0, 2], [1, 1], {"new_axis_mask": 0b01, "begin_mask": 0, "end_mask": 0}, X[None, 0:2]),
        ([0, 0, 0], [0, 0, 0], [1, -1, 2], {"begin_mask": 0b111, "end_mask": 0b111}, X[:, ::-1, ::2]),
        ([1, 1, 1], [1, 1, 2], [1, 1, 1], {"offset": True}, X[1:2, 1:2, 1:3]),
    ],
)
def test_strided_slice(begin, end, strides, masks, want):
    np.testing.assert_array_equal(tflite.strided_slice(X, begin, end, strides, **masks), want)


def test_strided_slice_refusals():
    with pytest.raises(LstmctlError, match="index 5 is outside axis 1"):
        tflite.strided_slice(X, [0, 5], [0, 6], [1, 1], shrink_axis_mask=0b10, where="op")
    with pytest.raises(LstmctlError, match="stride of 0"):
        tflite.strided_slice(X, [0], [1], [0], where="op")


def test_split_fill_reverse():
    a, b = tflite.split_equal(X, parts=2, axis=-1)
    np.testing.assert_array_equal(np.concatenate([a, b], axis=-1), X)
    np.testing.assert_array_equal(tflite.fill(np.array([2, 3], np.int32), np.float32(1.5)), np.full((2, 3), 1.5, np.float32))
    np.testing.assert_array_equal(tflite.reverse(X, [1]), X[:, ::-1])
    with pytest.raises(LstmctlError, match="does not split into 5 equal parts"):
        tflite.split_equal(X, parts=5, axis=2)


def test_fill_over_budget_before_allocating():
    with pytest.raises(LstmctlError, match="over lstmctl's budget"):
        tflite.fill(np.array([1 << 16, 1 << 16], np.int64), np.float32(0), where="model.tflite: FILL")
    assert budget.limit("op_elements") < (1 << 32)


def test_fused_activations():
    x = np.array([-7.0, -0.5, 0.5, 7.0], np.float32)
    np.testing.assert_array_equal(tflite.fused_activation(x, name="relu6"), [0, 0, 0.5, 6])
    np.testing.assert_array_equal(tflite.fused_activation(x, name="relu_n1_to_1"), [-1, -0.5, 0.5, 1])
    with pytest.raises(LstmctlError, match="fused activation sign_bit"):
        tflite.fused_activation(x, name="sign_bit")


def test_symmetric_row_quantization_rounds_half_away_from_zero():
    q, scale, zero = quantized.quantize_rows(np.array([[2.5, 127.0], [0.0, 0.0]], np.float32), asymmetric=False)
    np.testing.assert_array_equal(q, [[3, 127], [0, 0]])  # 2.5 -> 3 as std::round does (NumPy's rint gives 2)
    np.testing.assert_array_equal(scale, np.float32([1.0, 1.0]))  # an all-zero row: scale 1, as LiteRT sets it
    np.testing.assert_array_equal(zero, [0, 0])


def test_asymmetric_row_quantization():
    """[0, 1, 2]: range [0, 2] over 255 steps, zero point -128 (from the minimum: the smaller error),
    1 · 127.5 − 128 = −0.5 → −1 (half away from zero)."""
    q, scale, zero = quantized.quantize_rows(np.array([[0.0, 1.0, 2.0]], np.float32), asymmetric=True)
    np.testing.assert_array_equal(zero, [-128])
    np.testing.assert_allclose(scale, [2 / 255], rtol=1e-7)
    np.testing.assert_array_equal(q, [[-128, -1, 127]])


@pytest.mark.parametrize("asymmetric", [False, True])
def test_hybrid_matmul_is_the_integer_product_scaled(asymmetric):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 8)).astype(np.float32)
    w = rng.integers(-127, 128, (5, 8)).astype(np.int8)
    w_scale = np.float32(0.02)
    q, s, z = quantized.quantize_rows(x, asymmetric=asymmetric)
    want = ((q.astype(np.int64) - z[:, None]) @ w.T.astype(np.int64)).astype(np.float64) * (s[:, None] * w_scale)
    got = quantized.hybrid_matmul(x, w, w_scale, asymmetric=asymmetric)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(got, x @ (w.T.astype(np.float32) * w_scale), atol=0.05)  # close to the float product


def test_fully_connected_shapes_and_per_row_scales():
    x = np.ones((2, 3, 4), np.float32)
    w = np.arange(8, dtype=np.float32).reshape(2, 4)
    assert quantized.fully_connected(x, w).shape == (6, 2)
    assert quantized.fully_connected(x, w, keep_num_dims=True).shape == (2, 3, 2)
    wq = np.array([[1, 2, 3, 4], [-4, -3, -2, -1]], np.int8)
    got = quantized.fully_connected(np.ones((1, 4), np.float32), wq, np.float32([0.5, -0.5]), w_scale=np.float32([0.1, 0.2]))
    np.testing.assert_allclose(got, [[10 * 0.1 + 0.5, -10 * 0.2 - 0.5]], rtol=1e-6)
    with pytest.raises(LstmctlError, match=r"does not fit weights \(2, 4\)"):
        quantized.fully_connected(np.ones((1, 3), np.float32), w)


def test_dequantize_per_axis():
    q = np.array([[1, -2], [3, 4]], np.int8)
    got = quantized.dequantize(q, scale=[0.5, 2.0], zero_point=[0, 1], axis=0)
    np.testing.assert_array_equal(got, [[0.5, -1.0], [4.0, 6.0]])
    np.testing.assert_array_equal(quantized.dequantize(np.float16([1.5]), scale=[], zero_point=[]), np.float32([1.5]))
    with pytest.raises(LstmctlError, match="3 scales do not fit axis 0"):
        quantized.dequantize(q, scale=[1, 2, 3], zero_point=[0, 0, 0], axis=0)
