"""Recurrent weights in other frameworks' conventions: export, import, and an ONNX model.

Each framework fuses the gates of one LSTM / GRU / simple RNN layer differently:

| convention | LSTM | GRU | simple RNN |
|---|---|---|---|
| keras   | kernel (in, 4u), recurrent_kernel (u, 4u), bias (4u,); i, f, c, o | z, r, h; bias (2, 3u) reset_after=True, (3u,) False | kernel, recurrent_kernel, bias |
| pytorch | weight_ih_l{k} (4u, in), weight_hh_l{k} (4u, u), bias_ih_l{k} + bias_hh_l{k}; i, f, g, o | r, z, n (= reset_after=True) | nn.RNN, tanh or relu |
| tf1     | <scope>/lstm_cell/kernel (in + u, 4u) for concat([x, h]), bias; i, j, f, o; forget_bias added at run time | gru_cell/gates/{kernel,bias} (r, u), candidate/{kernel,bias} (= reset_after=False) | basic_rnn_cell/{kernel,bias} |
| onnx    | W [dirs, 4u, in], R [dirs, 4u, u], B [dirs, 8u] = [Wb, Rb]; i, o, f, c | z, r, h; linear_before_reset ⇔ reset_after | ONNX RNN |

This module holds those layouts as tables and is the public face of the conversions:
`export(model, to)` turns a model's recurrent layer(s) into one of these layouts (arrays and notes
for the user; lstmctl.export.arrays); `import_arrays(arrays, convention)` reads such arrays back
into a `Model` with one recurrent layer (or a stack), named after its kind, that `run`, `trace`,
`inspect` and `diagnose` treat like any Keras model (lstmctl.formats.npz_weights);
`onnx_model(model)` builds a runnable ONNX graph (needs `onnx`; lstmctl.export.onnx_model).

Every mapping here is exact: a permutation of gate blocks, a transpose, a bias split into two
halves one of which is zero, or (TF1 only) the run-time forget_bias subtracted from the stored
forget-gate bias, kept in float64 so that adding it back restores the Keras bias bit for bit.
Where a target framework cannot compute what the layer computes, export refuses and says why.
"""


CONVENTIONS = ("keras", "pytorch", "tf1", "onnx")
TARGETS = (*CONVENTIONS, "onnx-model")
HARD_SIGMOID_FORMS = {"keras2": 2, "keras3": 3}
KIND_BY_GATES = {4: "lstm", 3: "gru", 1: "simple_rnn"}
CLASS_NAME = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "SimpleRNN"}
TORCH_CLASS = {"lstm": "nn.LSTM", "gru": "nn.GRU", "simple_rnn": "nn.RNN"}
TF1_CELL = {"lstm": "lstm_cell", "gru": "gru_cell", "simple_rnn": "basic_rnn_cell"}
ONNX_OP = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "RNN"}
IDENTITY_LAYERS = {"Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout"}
# Gate-block permutations: new block j is old block PERM[j]. Each is its own inverse except ONNX's.
KERAS_TO_TF1 = (0, 2, 1, 3)  # i, f, c, o -> i, j, f, o
KERAS_TO_ONNX = (0, 3, 1, 2)  # i, f, c, o -> i, o, f, c
ONNX_TO_KERAS = (0, 2, 3, 1)
KERAS_TO_TORCH_GRU = (1, 0, 2)  # z, r, h -> r, z, n
TF1_F = 2  # the forget block in TF1's i, j, f, o
# What each framework's layer can compute (activation, recurrent_activation).
ONNX_ACTIVATIONS = {"tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu", "hard_sigmoid": "HardSigmoid", "linear": "Affine", "elu": "Elu", "softsign": "Softsign", "softplus": "Softplus"}


def blocks(a, perm, k: int):
    """Reorder the k gate blocks along the last axis (a copy)."""
    import numpy as np  # here, not above: the CLI reads these tables before it needs NumPy

    n = a.shape[-1] // k
    return np.concatenate([a[..., j * n : (j + 1) * n] for j in perm], axis=-1)


TF1_LEAVES = ("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias", "kernel", "bias")
TF1_REFUSED = {"w_f_diag": "peephole weights", "w_i_diag": "peephole weights", "w_o_diag": "peephole weights", "projection/kernel": "a projection (num_proj)"}


_PUBLIC = {
    "export": "lstmctl.export.arrays",
    "onnx_model": "lstmctl.export.onnx_model",
    "import_arrays": "lstmctl.formats.npz_weights",
    "import_file": "lstmctl.formats.npz_weights",
}


def __getattr__(name):
    """export, onnx_model, import_arrays and import_file, loaded on first use: they import the
    layer registry, which these tables must not (the registry's readers import them)."""
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
