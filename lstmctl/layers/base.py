"""What every layer type provides, and the registry that maps Keras class names to them.

A layer type reads its part of a saved config (`build`), runs its forward pass on NumPy arrays
(`call`) and says what inspect shows of it (`facts`). Types register under Keras class names;
a class name that is not registered makes an opaque layer, listed but never interpreted.
"""

import importlib
from dataclasses import dataclass, field

import numpy as np

from .. import config as cfg
from ..budget import Tally
from ..errors import LstmctlError, Unsupported

# Which family module registers each Keras class name: the registry imports a family the first time
# a model names one of its classes, so a small model's run loads two families of twelve.
# (tests/test_layout.py checks this index against what the modules register.)
FAMILIES = {
    "activations": "LeakyReLU ELU ReLU ThresholdedReLU PReLU Softmax",
    "attention": "Attention AdditiveAttention MultiHeadAttention Dot",
    "conv_lstm": "ConvLSTM1D ConvLSTM2D ConvLSTM3D",
    "convolution": "Conv1D Conv2D Conv3D DepthwiseConv1D DepthwiseConv2D SeparableConv1D SeparableConv2D",
    "core": "InputLayer Dropout SpatialDropout1D SpatialDropout2D SpatialDropout3D GaussianNoise GaussianDropout AlphaDropout ActivityRegularization Dense Activation Embedding Masking",
    "merging": "Concatenate Add Average Subtract Multiply Maximum Minimum",
    "normalization": "BatchNormalization LayerNormalization UnitNormalization",
    "pooling": " ".join(f"{kind}Pooling{n}D" for kind in ("Max", "Average", "GlobalMax", "GlobalAverage") for n in (1, 2, 3)),
    "preprocessing": "Rescaling",
    "recurrent": "LSTM GRU SimpleRNN CuDNNLSTM CuDNNGRU RNN Bidirectional",
    "reshaping": " ".join(["Flatten Reshape RepeatVector Permute", *(f"{kind}{n}D" for kind in ("Cropping", "ZeroPadding", "UpSampling") for n in (1, 2, 3))]),
    "wrappers": "TimeDistributed",
}
_FAMILY_OF = {name: family for family, names in FAMILIES.items() for name in names.split()}


class Registry(dict):
    """Keras class name -> the layer type that runs it, each family imported on first lookup."""

    def _load(self, name):
        family = _FAMILY_OF.get(name)
        if family is not None and not dict.__contains__(self, name):
            importlib.import_module(f"{__package__}.{family}")

    def __getitem__(self, name):
        self._load(name)
        return super().__getitem__(name)

    def __contains__(self, name):
        self._load(name)
        return super().__contains__(name)

    def get(self, name, default=None):
        self._load(name)
        return super().get(name, default)

    def load_all(self) -> "Registry":
        """Every family imported (to list what lstmctl runs)."""
        for family in FAMILIES:
            importlib.import_module(f"{__package__}.{family}")
        return self


REGISTRY = Registry()


def register(*class_names):
    """Class decorator: one instance of the type serves every class name given."""

    def deco(cls):
        instance = cls()
        for name in class_names:
            if dict.__contains__(REGISTRY, name):
                raise RuntimeError(f"{name} registered twice")
            dict.__setitem__(REGISTRY, name, instance)
        return cls

    return deco


def entry_weight_count(entry, where) -> int | None:
    """How many arrays a legacy file keeps for a config entry (None: not a layer lstmctl reads)."""
    spec = REGISTRY.get(entry.get("class_name"))
    if spec is None or cfg.foreign(entry):
        return None
    return spec.weight_count(cfg.entry_config(entry, where), where)


@dataclass
class Tensor:
    value: np.ndarray
    mask: np.ndarray | None = None  # (batch, time) bool


@dataclass
class Context:
    """What a layer's call needs from the run it is part of."""

    path: str  # the model file, for messages
    keras_major: int
    dtype: str | None = None  # forced compute dtype
    record: dict = field(default_factory=dict)  # contract keys -> arrays (recurrent layers' sequences and states)
    overrides: dict = field(default_factory=dict)  # layer name -> initial state arrays
    sequences: bool = True  # record L/sequence also for layers that do not return sequences
    watch: frozenset = frozenset()  # recurrent layers whose input, states and gates to keep
    seen: dict = field(default_factory=dict)  # name -> {"x": Tensor, "states": [...], "traces": {...}}
    probe: bool = False  # inspect's shape probe
    layer_outputs: bool = False  # record every layer's outputs as `layer/<name>` (`/<i>` for several)
    carry: dict = field(default_factory=dict)  # recurrent layer key -> the states it starts from (a carried State)
    final_states: dict = field(default_factory=dict)  # recurrent layer key -> its final states, to carry on
    tally: Tally = field(init=False)  # the elements graph operators compute in this run (lstmctl.oplib)
    direct: bool = False  # run_layer: the input goes straight to one layer, (batch, time, features) whatever the file's layout
    # The call being made (set by the runner before each layer call):
    states: list = field(default_factory=list)  # initial_state arrays it was given
    node: int = 0  # which call of the layer (a shared layer's later calls record under L@n)
    kwargs: dict = field(default_factory=dict)  # tensors passed by keyword, name -> list[Tensor]
    call_kwargs: dict = field(default_factory=dict)  # the call's keyword arguments as saved (data, never code)

    def __post_init__(self):
        self.tally = Tally(self.path)

    def compute_dtype(self, layer) -> str:
        if self.dtype:
            return self.dtype
        if "dtype" not in layer.params:  # a layer made outside a config (weights-only, conventions)
            layer.params["dtype"] = cfg.compute_dtype(layer.class_name, layer.config, f"layer '{layer.name}'")
        return layer.params["dtype"]


class LayerType:
    """Defaults for a weightless, single-input layer that keeps its input's mask."""

    kind = "layer"
    n_inputs = 1  # positional input tensors per call; None: two or more (merges)
    n_weights = 0  # arrays a legacy HDF5 file keeps for the layer

    def compute_dtype(self, config, where) -> str:
        return cfg.compute_dtype(type(self).__name__, config, where)

    def weight_count(self, config, where) -> int | None:
        """How many arrays a legacy file keeps for this layer (None: cannot say)."""
        return self.n_weights

    def v3_weights(self, store, path, config) -> list:
        """The layer's arrays in a Keras 3 store, under its group `path`."""
        return (store.vars(path) or []) if self.n_weights else []

    def build(self, builder, layer, entry, where) -> None:
        """Check the config and weights once, keeping what `call` needs in `layer.params`."""
        if len(layer.weights) != self.n_weights:
            raise LstmctlError(f"{where}: {layer.class_name} should hold {self.n_weights} weight arrays, found {len(layer.weights)}")

    def call(self, layer, args: list, ctx: Context) -> list:
        return [Tensor(self.forward(layer, args[0].value, ctx), self.output_mask(layer, args))]

    def forward(self, layer, x, ctx):
        raise Unsupported(f"layer '{layer.name}': {layer.class_name} is not supported by run")

    def output_mask(self, layer, args):
        return args[0].mask

    def facts(self, layer, major) -> dict:
        """Extra facts for inspect (a layer's parsed settings)."""
        return {}


class NestedModel(LayerType):
    """A model used as a layer: the runner walks its own graph."""

    kind = "model"
    n_inputs = None


NESTED_MODEL = NestedModel()


def check_rank(layer, x, ranks, what="input"):
    if x.ndim not in ranks:
        want = " or ".join(str(r) for r in sorted(ranks))
        raise LstmctlError(f"layer '{layer.name}': {layer.class_name} expects a rank-{want} {what}, got shape {x.shape}")


def cast(x, dtype):
    return x.astype(dtype, copy=False)
