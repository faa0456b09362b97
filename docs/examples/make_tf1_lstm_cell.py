"""Writes tf1_lstm_cell.npz: CONVENTIONS vector 2's TF1 LSTMCell, as TF1 names its variables.

3 units, 4 inputs, forget_bias 1.0 (added by TF1 at run time, not stored), zero bias; the kernel
from NumPy's legacy generator after np.random.seed(0) and the 7x4 input draw (glorot uniform).
The input itself is sample_models/k2_vector2.input.npy. Run from the repository root.
"""

import math

import numpy as np

np.random.seed(0)
x = np.random.normal(size=(1, 7, 4))
limit = math.sqrt(6 / (7 + 12))
kernel = np.random.uniform(-limit, limit, size=(7, 12)).astype(np.float32)
np.savez("docs/examples/tf1_lstm_cell.npz", **{"rnn/lstm_cell/kernel": kernel, "rnn/lstm_cell/bias": np.zeros(12, np.float32)})
