"""What a command imports (issue 20: start-up is measured in benchmarks/, guarded here without
timing): `lstmctl --help` needs no NumPy, h5py or rich; `run` on a small LSTM + Dense model loads
two layer families of twelve, and no TensorFlow-format reader, report, exporter or analysis
it does not use. An added eager import shows up here as a new module."""

import json
import subprocess
import sys
import textwrap

from conftest import ROOT, sample

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from lstmctl.cli import main
    try:
        main(sys.argv[1:], prog_name="lstmctl", standalone_mode=False)
    except SystemExit:
        pass
    sys.stdout.flush()
    print(json.dumps(sorted(sys.modules)), file=sys.stderr)
    """
)


def imported(*args) -> set:
    out = subprocess.run([sys.executable, "-c", SCRIPT, *map(str, args)], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(out.stderr.strip().splitlines()[-1]))


def test_help_imports_no_numpy_h5py_or_rich():
    modules = imported("--help")
    assert not {"numpy", "h5py", "rich", "threadpoolctl", "lstmctl.layers", "lstmctl.runner"} & modules


def test_small_run_imports_only_what_it_uses():
    modules = imported("run", sample("k3_lstm_dense.keras"), "--input", sample("k3_lstm_dense.input.npy"))
    families = sorted(m.rsplit(".", 1)[1] for m in modules if m.startswith("lstmctl.layers.") and m != "lstmctl.layers.base")
    assert families == ["core", "recurrent"]
    unused = {
        "lstmctl.layers.ops", "lstmctl.formats.infer", "lstmctl.formats.npz_weights", "lstmctl.formats.weights_builder", "lstmctl.formats.savedmodel",
        "lstmctl.formats.tensorbundle", "lstmctl.formats.tf1_checkpoint", "lstmctl.formats.tf2_checkpoint", "lstmctl.formats.crc32c",
        "lstmctl.formats.keras_h5", "lstmctl.render.report", "lstmctl.render.diagram", "lstmctl.export.arrays", "lstmctl.export.onnx_model",
        "lstmctl.analysis.trace", "lstmctl.analysis.diagnose", "lstmctl.analysis.compare",
        "lstmctl.formats.torch_file", "lstmctl.formats.safetensors_file", "lstmctl.formats.onnx_file", "lstmctl.formats.ports", "lstmctl.layers.onnx",
    }  # fmt: skip
    assert not unused & modules, sorted(unused & modules)
    assert not {"hashlib", "concurrent.futures"} & modules  # a state's fingerprint (OpenSSL), batch slices on threads: not here
    assert {"lstmctl.formats.keras_zip", "lstmctl.runner", "lstmctl.render.console"} <= modules  # the path it did take
    assert "lstmctl.threads" in modules and "threadpoolctl" not in modules  # products too small for BLAS threads: BLAS left alone


def test_registry_index_names_what_each_family_registers():
    """base.FAMILIES (which module registers which class, for the lazy registry) agrees with what
    the family modules register when all are imported."""
    from lstmctl.layers import REGISTRY
    from lstmctl.layers.base import FAMILIES

    registered = {}
    for name, layer_type in dict(REGISTRY.load_all()).items():
        registered.setdefault(type(layer_type).__module__.rsplit(".", 1)[1], set()).add(name)
    assert registered == {family: set(names.split()) for family, names in FAMILIES.items()}
