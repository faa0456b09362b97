"""A TF1 user's own NumPy LSTM, the way it is usually first written: it reads the checkpoint's
LSTMCell variables (exported without TensorFlow by `lstmctl export … --to tf1`) and forgets the
forget_bias TF1's LSTMCell adds at run time. `lstmctl diagnose` names the mistake (README,
"TensorFlow 1 checkpoints"). Run from the repository root:

    lstmctl export sample_models/tf/tf1_lstm_cell --to tf1 -o docs/examples/tf1_lstm_cell_vars.npz
    python docs/examples/tf1_my_lstm.py
"""

import numpy as np


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


w = np.load("docs/examples/tf1_lstm_cell_vars.npz")
kernel, bias = w["rnn/lstm_cell/kernel"].astype(np.float32), w["rnn/lstm_cell/bias"].astype(np.float32)
x = np.load("docs/examples/tf1_x.npy")  # (batch, time, features), as fed to dynamic_rnn
units = kernel.shape[1] // 4
h = c = np.zeros((x.shape[0], units), np.float32)
outputs = []
for t in range(x.shape[1]):
    z = np.concatenate([x[:, t], h], axis=1) @ kernel + bias  # TF1: one kernel on [x, h]
    i, j, f, o = np.split(z, 4, axis=1)  # TF1's block order
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(j)  # (TF1 adds forget_bias to f here)
    h = sigmoid(o) * np.tanh(c)
    outputs.append(h)
np.save("docs/examples/tf1_my_outputs.npy", np.stack(outputs, axis=1))
