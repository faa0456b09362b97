"""Reading Keras layer configs as data: names, flags, sizes, dtypes and tensor references.

Keras 1, 2 and 3 write the same facts differently; these helpers read every form and refuse
anything that is not plain data of the expected type, with a message naming where it was.
"""

import re

from .errors import LstmctlError, show
from .kernels import ACTIVATION_NAMES
from .model import Call, Ref, config_flag

# A class name alone does not make a layer Keras's own: a custom class registered under an allowed
# name (module "my_pkg", registered_name "Custom>LSTM") would compute something else.
KERAS_MODULES = re.compile(r"(keras|tf_keras|tensorflow\.keras|tensorflow\.python\.keras)(\.[A-Za-z0-9_.]+)?")
OPS_MODULES = ("keras.src.ops.", "keras.ops")
MAX_DIM = 1 << 20  # one declared input dimension, RepeatVector's n, Reshape's target dimensions
MAX_SAMPLE_ELEMENTS = 1 << 24  # one sample of a declared input: what a shape probe or a random input allocates
FLOAT_DTYPES = ("float16", "float32", "float64")
RNN_FLAGS = ("return_sequences", "return_state", "go_backwards", "stateful", "zero_output_for_mask")


def short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."




def snake_case(name: str) -> str:
    """Keras's naming.to_snake_case: how Keras 3 names a layer's weight group."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def entry_config(entry, where) -> dict:
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
        raise LstmctlError(f"{where}: a layer entry has no class_name")
    cls = entry["class_name"]
    if not cls or not cls.isprintable() or len(cls) > 200:
        raise LstmctlError(f"{where}: layer class name '{show(cls)[:200]}' is not a plain name")
    config = entry.get("config", {})
    if not isinstance(config, dict):
        raise LstmctlError(f"{where}: layer config of {cls} is not an object")
    return config


def entry_name(entry, where) -> str:
    config = entry_config(entry, where)
    name = config.get("name", entry.get("name"))
    if not isinstance(name, str) or not name:
        raise LstmctlError(f"{where}: a {entry['class_name']} layer has no name")
    if not name.isprintable() or len(name) > 200:
        raise LstmctlError(f"{where}: layer name '{show(name)[:200]}' is not a plain name")
    return name


def foreign(entry) -> str | None:
    """Why an entry is not Keras's own class of that name (a custom module or registered name), or None."""
    module = entry.get("module")
    registered = entry.get("registered_name")
    if module is not None and not (isinstance(module, str) and KERAS_MODULES.fullmatch(module)):
        return f"module {show(module) if isinstance(module, str) else module!r}"
    if registered is not None and registered != entry["class_name"]:
        return f"registered_name {show(registered) if isinstance(registered, str) else registered!r}"
    return None


def units(config, where) -> int:
    # Keras 1 called it output_dim.
    return positive_int(config.get("units", config.get("output_dim")), f"{where}: units")


def use_bias(config, where="") -> bool:
    value = config.get("use_bias", config.get("bias", True))
    if not isinstance(value, bool):
        raise LstmctlError(f"{where}{': ' if where else ''}config 'use_bias' must be true or false, got {short(value)}")
    return value


def check_flags(config, keys, where):
    for key in keys:
        config_flag(config, key, where)


flag = config_flag


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def number(config, key, where, default=None) -> float:
    value = config.get(key, default)
    if not is_number(value):
        raise LstmctlError(f"{where}: {key} {short(value)} is not a number")
    return float(value)


def axis(value, where, key="axis") -> int:
    if not is_int(value) or not -32 <= value < 32:
        raise LstmctlError(f"{where}: {key} {short(value)} is not an axis")
    return value


def int_tuple(value, n, where, key, minimum=1) -> tuple:
    """A size given as one int or a list of n ints (kernel_size, strides, pool_size…)."""
    items = [value] * n if is_int(value) else value
    if not isinstance(items, (list, tuple)) or len(items) != n or not all(is_int(v) and minimum <= v <= MAX_DIM for v in items):
        raise LstmctlError(f"{where}: {key} {short(value)} is not {n} integer(s) of at least {minimum}")
    return tuple(items)


def choice(config, key, options, where, default=None):
    value = config.get(key, default)
    if value not in options:
        raise LstmctlError(f"{where}: {key} {short(value)} is not one of {', '.join(map(str, options))}")
    return value


def shape(value, where):
    if not isinstance(value, list) or not value or len(value) > 32:
        raise LstmctlError(f"{where}: input shape {short(value)} is not a list")
    out = []
    elements = 1
    for dim in value[1:]:
        if dim is None:
            out.append(None)
        else:
            out.append(positive_int(dim, f"{where}: input dimension", MAX_DIM))
            elements *= dim
    if elements > MAX_SAMPLE_ELEMENTS:
        raise LstmctlError(f"{where}: input shape {tuple(value)} declares {elements} values per sample, over lstmctl's cap of {MAX_SAMPLE_ELEMENTS}")
    return tuple(out)


def dtype_name(value, where="") -> str:
    """A layer's dtype: a string (Keras 2) or a DTypePolicy dict (Keras 3)."""
    if value is None:
        return "float32"
    if isinstance(value, dict):
        config = value.get("config")
        value = config.get("name") if isinstance(config, dict) else None
    if not isinstance(value, str) or not value.isprintable() or len(value) > 40:
        raise LstmctlError(f"{where}: dtype {short(value)} is not understood")
    if value.startswith("mixed_"):
        value = value[len("mixed_") :]
    return value


def compute_dtype(cls, config, where) -> str:
    name = dtype_name(config.get("dtype"), where)
    if name not in FLOAT_DTYPES:
        raise LstmctlError(f"{where}: compute dtype {name} is not supported")
    return name


def activation_name(value, key, where):
    if value is not None and not (isinstance(value, str) and value in ACTIVATION_NAMES):
        raise LstmctlError(f"{where}: {key} {short(value)} is not a built-in Keras activation lstmctl knows")
    return value


def recurrent_activation(config):
    if "recurrent_activation" in config:
        return config["recurrent_activation"]
    return config.get("inner_activation", "hard_sigmoid" if "inner_activation" in config else "sigmoid")


# --- tensor references ------------------------------------------------------------------------


def tensor_refs(obj, where) -> list:
    """Refs from a Keras 3 call argument: a __keras_tensor__ dict, or lists of them."""
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            config = obj.get("config")
            return [ref(config.get("keras_history") if isinstance(config, dict) else None, where)]
        return []
    if isinstance(obj, (list, tuple)):
        out = []
        for item in obj:
            out.extend(tensor_refs(item, where))
        return out
    return []


def ref(triple, where) -> Ref:
    if not isinstance(triple, (list, tuple)) or len(triple) < 3 or not isinstance(triple[0], str):
        raise LstmctlError(f"{where}: malformed tensor reference {triple!r}")
    node, index = triple[1], triple[2]
    for v in (node, index):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise LstmctlError(f"{where}: malformed tensor reference {triple!r}")
    return Ref(triple[0], node, index)


def _tensor_refs_k2(obj, where) -> list:
    if obj is None:
        return []
    if isinstance(obj, list) and obj and isinstance(obj[0], str):
        return [ref(obj, where)]
    if isinstance(obj, list):
        out = []
        for item in obj:
            out.extend(_tensor_refs_k2(item, where))
        return out
    return tensor_refs(obj, where)


def _k2_items(node, where, depth=0) -> list:
    """A Keras 2 inbound node's [name, node, index, kwargs] items; an RNN's nested initial
    states (one list per cell of a stack) are flattened in order."""
    out = []
    for item in node:
        if isinstance(item, list) and item and isinstance(item[0], list) and depth < 8:
            out.extend(_k2_items(item, where, depth + 1))
        elif isinstance(item, list):
            out.append(item)
        else:
            raise LstmctlError(f"{where}: malformed inbound node")
    return out


def calls(entry, is_rnn: bool, where) -> list:
    """A Functional layer entry's inbound nodes as Calls (Keras 2 lists or Keras 3 args/kwargs)."""
    nodes = entry.get("inbound_nodes", [])
    if not isinstance(nodes, list):
        raise LstmctlError(f"{where}: inbound_nodes is not a list")
    out = []
    for node in nodes:
        if isinstance(node, dict):  # Keras 3
            args = node.get("args", [])
            kwargs = node.get("kwargs") or {}
            if not isinstance(kwargs, dict):
                raise LstmctlError(f"{where}: malformed call kwargs")
            inputs = tensor_refs(args, where)
            states = tensor_refs(kwargs.get("initial_state"), where)
            masks = tensor_refs(kwargs.get("mask"), where)
            # Tensors passed by keyword (a list of masks, an attention mask…); one mask is `mask`.
            extra = {k: tensor_refs(v, where) for k, v in kwargs.items() if k != "initial_state" and not (k == "mask" and len(masks) == 1)}
            out.append(Call(inputs, states, masks[0] if len(masks) == 1 else None, True, args if isinstance(args, list) else None,
                            kwargs, {k: v for k, v in extra.items() if v}))  # fmt: skip
            continue
        if not isinstance(node, list):
            raise LstmctlError(f"{where}: malformed inbound node")
        inputs, states, kwargs = [], [], {}
        for item in _k2_items(node, where):  # Keras 1/2: [[name, node, index, kwargs], ...]
            inputs.append(ref(item, where))
            if len(item) > 3 and isinstance(item[3], dict):
                states.extend(_tensor_refs_k2(item[3].get("initial_state"), where))
                kwargs = item[3]
        if is_rnn and len(inputs) > 1 and not states:
            # Keras 2 RNNs receive [inputs, *initial_state] as one list.
            inputs, states = inputs[:1], inputs[1:]
        # Tensors passed by keyword (MultiHeadAttention's value, key, attention_mask…).
        extra = {k: _tensor_refs_k2(v, where) for k, v in kwargs.items() if k != "initial_state"}
        out.append(Call(inputs, states, kwargs=kwargs, tensor_kwargs={k: v for k, v in extra.items() if v}))
    return out


def io_refs(value, where) -> list:
    """input_layers / output_layers: one triple, or lists / dicts of them, nested."""
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, list) or not value:
        raise LstmctlError(f"{where}: model inputs/outputs are missing")
    if isinstance(value[0], str):
        return [ref(value, where)]
    return [r for item in value for r in io_refs(item, where)]


def positive_int(value, what: str, cap: int | None = None) -> int:
    """A size from a config: a true int (not a bool, not a float), at least 1 (and at most `cap`)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LstmctlError(f"{what} must be a positive integer, got {short(value)}")
    if cap is not None and value > cap:
        raise LstmctlError(f"{what} is {value}, over lstmctl's cap of {cap}")
    return value
