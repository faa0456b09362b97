"""The real-world tier for PyTorch files: every torch.save and safetensors file of ../shared/zoo5
(state_dicts and whole pickled modules that other projects published) opens with inspect, and
every recurrent module in it runs as torch computes it, torch reading the same file at test time.

Needs torch and safetensors (the verify extra) and the zoo5 folder beside the repository; skipped
otherwise. The files are other people's and are not in the repository.
"""

import warnings

import numpy as np
import pytest
from click.testing import CliRunner

import lstmctl
from conftest import ROOT
from lstmctl.cli import main

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
from test_ports_verify import torch_state  # noqa: E402 (after the importorskip)

ZOO = ROOT.parent / "shared" / "zoo5"
FILES = sorted(str(p.relative_to(ZOO)) for p in ZOO.glob("*/*") if p.suffix in (".pt", ".pth", ".safetensors")) if ZOO.is_dir() else []
pytestmark = pytest.mark.skipif(not ZOO.is_dir(), reason=f"{ZOO} does not exist (the zoo5 files are not in the repository)")
ATOL = 1e-5
torch.set_num_threads(1)


def _state(path):
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch_state(path)


def _torch_module(state, module, kind, levels, nonlinearity):
    """The nn.LSTM / GRU / RNN that `state`'s tensors under `module` make, as torch builds it."""
    prefix = f"{module}." if f"{module}.weight_ih_l0" in state else ""
    own = {k[len(prefix) :]: v.float() for k, v in state.items() if k.startswith(prefix) and k[len(prefix) :].split("_l")[0] in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")}
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "simple_rnn": torch.nn.RNN}[kind]
    options = {"nonlinearity": nonlinearity} if kind == "simple_rnn" else {}
    if "weight_hr_l0" in own:
        options["proj_size"] = own["weight_hr_l0"].shape[0]
    net = cls(own["weight_ih_l0"].shape[1], own["weight_hh_l0"].shape[0] // {"lstm": 4, "gru": 3, "simple_rnn": 1}[kind], num_layers=len(levels),
              bias="bias_ih_l0" in own, batch_first=True, bidirectional="weight_ih_l0_reverse" in own, **options)  # fmt: skip
    net.load_state_dict(own)
    return net.eval()


@pytest.mark.parametrize("name", FILES)
def test_inspect_opens_every_file(name):
    result = CliRunner().invoke(main, ["inspect", str(ZOO / name)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name", FILES)
def test_every_recurrent_module_runs_as_torch(name):
    path = ZOO / name
    m = lstmctl.load(str(path))
    state = _state(path)
    nonlinearity = next((n.split()[2].rstrip(",") for n in m.notes if n.startswith("nn.RNN nonlinearity")), "tanh")
    for module, levels, kind in m.ports:
        net = _torch_module(state, module, kind, levels, nonlinearity)
        x = np.random.default_rng(len(module)).standard_normal((2, 6, net.input_size)).astype(np.float32)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # oneDNN's note on projections
            y, final = net(torch.from_numpy(x))
        h, c = final if kind == "lstm" else (final, None)
        got = lstmctl.runner.run_layer(m, module, x)  # the module alone, on its own input
        lstmctl.runner.module_outputs(got, module, levels)  # torch's names for a one-level module too
        np.testing.assert_allclose(got[f"{module}/output"], y.numpy(), rtol=0, atol=ATOL, err_msg=f"{name}: {module}")
        np.testing.assert_allclose(got[f"{module}/h_n"], h.numpy(), rtol=0, atol=ATOL, err_msg=f"{name}: {module}")
        if c is not None:
            np.testing.assert_allclose(got[f"{module}/c_n"], c.numpy(), rtol=0, atol=ATOL, err_msg=f"{name}: {module}")
