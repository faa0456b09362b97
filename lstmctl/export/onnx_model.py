"""A runnable ONNX model of a recurrent layer (`lstmctl export --to onnx-model`; needs the onnx package).
"""

import numpy as np

from ..conventions import ONNX_ACTIVATIONS, ONNX_OP
from ..errors import LstmctlError
from ..model import Model
from .arrays import onnx_arrays
from .select import check_activations, select


def _onnx_activation(name: str, form: int):
    """(ONNX name, alpha, beta) for a Keras activation; alpha/beta None where not used."""
    if name == "hard_sigmoid":
        return "HardSigmoid", (0.2 if form < 3 else 1.0 / 6.0), 0.5
    if name == "linear":
        return "Affine", 1.0, 0.0
    if name == "elu":
        return "Elu", 1.0, None
    return ONNX_ACTIVATIONS[name], None, None


def onnx_model(model: Model, layers=None, opset: int = 14):
    """A runnable ONNX model of one recurrent layer: (serialized bytes, notes).

    Graph input X [seq_length, batch, input_size] (ONNX layout 0); outputs Y [seq_length,
    num_directions, batch, hidden_size], Y_h [num_directions, batch, hidden_size] (and Y_c).
    """
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise LstmctlError("--to onnx-model needs the onnx package: pip install 'lstmctl[onnx]' (or pip install onnx)") from None
    levels = select(model, layers, "onnx")
    notes = []
    (level,) = levels
    check_activations(level, "onnx-model", notes)
    W, R, B, lbr = onnx_arrays(level)
    dtype = W.dtype
    if dtype not in (np.float32, np.float64):
        raise LstmctlError(f"layer '{level.layer.name}': ONNX {ONNX_OP[level.kind]} takes float32 or float64 weights, not {dtype}")
    elem = TensorProto.FLOAT if dtype == np.float32 else TensorProto.DOUBLE
    direction = "bidirectional" if level.bidirectional else ("reverse" if level.go_backwards else "forward")
    attrs = {"hidden_size": level.units, "direction": direction}
    if lbr is not None:
        attrs["linear_before_reset"] = lbr
    cell = level.cells[0]
    per_direction = {"lstm": [cell.recurrent_activation_name, cell.activation_name, cell.activation_name], "gru": [cell.recurrent_activation_name, cell.activation_name], "simple_rnn": [cell.activation_name]}[level.kind]
    defaults = {"lstm": ["sigmoid", "tanh", "tanh"], "gru": ["sigmoid", "tanh"], "simple_rnn": ["tanh"]}[level.kind]
    if per_direction != defaults:
        names, alphas, betas = [], [], []
        for _ in level.cells:
            for act in per_direction:
                onnx_name, alpha, beta = _onnx_activation(act, cell.keras_major)
                names.append(onnx_name)
                if alpha is not None:
                    alphas.append(alpha)
                if beta is not None:
                    betas.append(beta)
        attrs["activations"] = names
        if alphas:
            attrs["activation_alpha"] = alphas
        if betas:
            attrs["activation_beta"] = betas
    inputs = ["X", "W", "R"] + (["B"] if B is not None else [])
    initializers = [numpy_helper.from_array(np.ascontiguousarray(W), "W"), numpy_helper.from_array(np.ascontiguousarray(R), "R")]
    if B is not None:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(B), "B"))
    dirs, u = len(level.cells), level.units
    outputs = ["Y", "Y_h"] + (["Y_c"] if level.kind == "lstm" else [])
    node = helper.make_node(ONNX_OP[level.kind], inputs, outputs, name=level.layer.name, **attrs)
    graph = helper.make_graph(
        [node],
        f"lstmctl_{level.layer.name}".replace("/", "_"),
        [helper.make_tensor_value_info("X", elem, ["seq_length", "batch", level.input_dim])],
        [helper.make_tensor_value_info("Y", elem, ["seq_length", dirs, "batch", u])]
        + [helper.make_tensor_value_info(name, elem, [dirs, "batch", u]) for name in outputs[1:]],
        initializer=initializers,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="lstmctl")
    proto.ir_version = 8  # opset 14 needs IR 7+; 8 is read by every current runtime
    onnx.checker.check_model(proto)
    notes.append(
        f"ONNX {ONNX_OP[level.kind]} ({direction}): feed X as (time, batch, features), i.e. x.transpose(1, 0, 2); "
        "Y is (time, directions, batch, units): Y.transpose(2, 0, 1, 3).reshape(batch, time, -1) is the whole sequence "
        + ("(both directions concatenated, as Keras's merge_mode='concat')" if level.bidirectional else "")
        + ("in input time order (Keras's go_backwards sequence is it reversed)" if level.go_backwards else "")
    )
    return proto.SerializeToString(), list(dict.fromkeys(notes))
