"""The thread policy (lstmctl/threads.py): what it reads from the system, what it chooses, how the
user overrides it, and that BLAS gets that number during a scan and its own number after."""

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import sample
from lstmctl import kernels, threads
from lstmctl.cli import main
from lstmctl.errors import UsageError
from lstmctl.gates import make_cell

threadpoolctl = pytest.importorskip("threadpoolctl")


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_quota_of_the_cgroup_or_an_ancestor(tmp_path):
    write(tmp_path / "cpu.max", "max 100000\n")
    write(tmp_path / "user.slice" / "cpu.max", "300000 100000\n")
    write(tmp_path / "user.slice" / "job" / "cpu.max", "max 100000\n")
    assert threads.cgroup_cpus("0::/user.slice/job\n", str(tmp_path)) == 3
    assert threads.cgroup_cpus("0::/\n", str(tmp_path)) is None  # "max": no quota
    write(tmp_path / "cpu.max", "150000 100000\n")
    assert threads.cgroup_cpus("0::/\n", str(tmp_path)) == 1  # whole CPUs, rounded down
    write(tmp_path / "cpu.max", "50000 100000\n")
    assert threads.cgroup_cpus("0::/\n", str(tmp_path)) == 1  # never below one


def test_cgroup_v1_quota(tmp_path):
    write(tmp_path / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us", "200000\n")
    write(tmp_path / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_period_us", "100000\n")
    text = "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n"
    assert threads.cgroup_cpus(text, str(tmp_path)) == 2
    write(tmp_path / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us", "-1\n")
    assert threads.cgroup_cpus(text, str(tmp_path)) is None  # -1: no quota


@pytest.mark.parametrize("text", ["", "garbage", "0::/x\n", "4:cpu:/../../etc\n", "0::\n", "1:cpu:"])
def test_cgroup_unreadable_or_malformed_is_no_quota(tmp_path, text):
    write(tmp_path / "x" / "cpu.max", "not numbers\n")
    assert threads.cgroup_cpus(text, str(tmp_path)) is None


def test_others_running_from_loadavg():
    assert threads.others_running("2.10 1.00 0.50 5/300 1234\n", own=2) == 3
    assert threads.others_running("0.00 0.00 0.00 1/300 1234\n", own=3) == 0
    assert threads.others_running("nonsense", own=1) == 0


def test_plan(monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.setattr(threads, "usable_cpus", lambda: 4)
    monkeypatch.setattr(threads, "others_running", lambda: 0)
    monkeypatch.setattr(threads, "unpacked_kernels", lambda: False)
    assert threads.plan(64 * 256, 1) == (1, 1)  # a batch-1 step: one thread
    assert threads.plan(32 * 256 * 1024, 32) == (4, 1)  # idle: BLAS's threads, as many as usable
    assert threads.plan(2 * threads.MIN_MACS_PER_THREAD, 32) == (2, 1)  # each thread gets enough work
    monkeypatch.setattr(threads, "others_running", lambda: 1)
    assert threads.plan(32 * 256 * 1024, 32) == (4, 1)  # one CPU taken: still BLAS's threads
    monkeypatch.setattr(threads, "others_running", lambda: 4)
    assert threads.plan(32 * 256 * 1024, 32) == (1, 4)  # busy: batch slices, one BLAS thread each
    assert threads.plan(32 * 256 * 1024, 3) == (1, 3)  # no more slices than samples
    monkeypatch.setenv(threads.ENV, "2")
    assert threads.plan(64, 1) == (2, 1)  # the user's number, whatever the size or the load
    with threads.use(1):
        assert threads.plan(1 << 30, 64) == (1, 1)  # use() before the environment


def test_plan_prefers_slices_where_blas_multiplies_their_blocks_unpacked(monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.setattr(threads, "usable_cpus", lambda: 2)
    monkeypatch.setattr(threads, "others_running", lambda: 0)
    monkeypatch.setattr(threads, "unpacked_kernels", lambda: True)
    assert threads.plan(32 * 256 * 1024, 32) == (1, 2)  # quiet, B32 H256: slices of 4M multiply-adds
    assert threads.plan(16 * 128 * 512, 16) == (2, 1)  # B16 H128: slices of 0.5M would be unpacked whole; BLAS's threads
    monkeypatch.setenv(threads.ENV, "2")
    assert threads.plan(32 * 256 * 1024, 32) == (2, 1)  # the user's number: BLAS's threads


@pytest.mark.parametrize("bad", ["0", "-1", "two", "1.5", "", "99999", "\u0662"])
def test_bad_numbers_are_usage_errors(bad):
    with pytest.raises(UsageError, match="whole number of threads"):
        threads.parse(bad, "--threads")


def lstm(batch, units=24):
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal(s).astype(np.float32) for s in ((3, 4 * units), (units, 4 * units), (4 * units,))]
    cell = make_cell("lstm", units, weights, where="t", activation="tanh", recurrent_activation="sigmoid", use_bias=True, reset_after=False, keras_major=3)
    x = rng.standard_normal((batch, 5, 3)).astype(np.float32)
    return cell, x, tuple(np.zeros((batch, units), np.float32) for _ in range(2))


def blas_threads_during_scan(monkeypatch, cell, x, states):
    seen = []
    real = kernels.fastpath.scan
    monkeypatch.setattr(kernels.fastpath, "scan", lambda *a, **k: (seen.append(threads.blas_threads()), real(*a, **k))[1])
    kernels.scan(cell, x, states)
    return seen[0]


def test_tiny_products_leave_blas_alone(monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        assert blas_threads_during_scan(monkeypatch, *lstm(1, units=4)) == 2  # 64 multiply-adds a step: no BLAS threads them
        with threads.use(1):
            assert blas_threads_during_scan(monkeypatch, *lstm(1, units=4)) == 1  # unless the user says


def test_scan_sets_blas_threads_and_restores_them(monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.setattr(threads, "usable_cpus", lambda: 2)
    monkeypatch.setattr(threads, "others_running", lambda: 0)
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        assert blas_threads_during_scan(monkeypatch, *lstm(1, units=64)) == 1  # B1 H64, which OpenBLAS would thread: one thread
        assert threads.blas_threads() == 2  # restored
        monkeypatch.setattr(threads, "MIN_MACS_PER_THREAD", 1)  # every product counts as large
        assert blas_threads_during_scan(monkeypatch, *lstm(4)) == 2
        with threads.use(1):
            assert blas_threads_during_scan(monkeypatch, *lstm(4)) == 1
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        assert blas_threads_during_scan(monkeypatch, *lstm(4)) == 1  # an outer limit holds
        assert threads.blas_threads() == 1


def test_busy_scan_runs_batch_slices_on_one_blas_thread_each(monkeypatch):
    from lstmctl import fastpath

    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.setattr(threads, "usable_cpus", lambda: 2)
    monkeypatch.setattr(threads, "others_running", lambda: 3)
    monkeypatch.setattr(threads, "MIN_MACS_PER_THREAD", 1)
    seen = []
    real = fastpath.scan
    monkeypatch.setattr(fastpath, "scan", lambda *a, **k: (seen.append((threads.blas_threads(), k["parts"])), real(*a, **k))[1])
    cell, x, states = lstm(5)
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        seq, final = kernels.scan(cell, x, states)
        assert seen == [(1, 2)]
        with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
            kernels.scan(cell, x, states)
            assert seen[-1] == (1, 1)  # an outer limit of one thread: one slice too
    want_seq, want_final = kernels.reference_scan(cell, x, states)
    np.testing.assert_allclose(seq, want_seq, atol=2e-6)
    for a, b in zip(final, want_final):
        np.testing.assert_allclose(a, b, atol=2e-6)


def test_results_do_not_depend_on_the_threads():
    cell, x, states = lstm(64, units=32)
    with threads.use(1):
        one = kernels.scan(cell, x, states)[0]
    with threads.use(2):
        two = kernels.scan(cell, x, states)[0]
    np.testing.assert_allclose(one, two, atol=1e-6)


def test_cli_threads_option_and_environment(monkeypatch):
    runner = CliRunner()
    model, x = str(sample("k3_lstm_dense.keras")), str(sample("k3_lstm_dense.input.npy"))
    base = runner.invoke(main, ["run", model, "--input", x, "--format", "json"])
    assert base.exit_code == 0, base.output
    one = runner.invoke(main, ["run", model, "--input", x, "--format", "json", "--threads", "1"])
    assert one.exit_code == 0 and one.output == base.output
    for args, env in ((["--threads", "0"], {}), (["--threads", "many"], {}), ([], {threads.ENV: "x"})):
        bad = runner.invoke(main, ["run", model, "--input", x, *args], env=env)
        assert bad.exit_code == 2, bad.output
        lines = bad.output.strip().splitlines()
        assert len(lines) == 1 and "whole number of threads" in lines[0], lines
    again = runner.invoke(main, ["run", model, "--input", x, "--format", "json"])
    assert again.exit_code == 0 and threads._fixed is None  # --threads holds for its own command only


def test_without_threadpoolctl_blas_keeps_its_own_number(monkeypatch):
    monkeypatch.setattr(threads, "_controller", False)  # as when threadpoolctl cannot be imported
    assert threads.blas_threads() is None
    cell, x, states = lstm(3)
    with threads.use(1):
        seq, _ = kernels.scan(cell, x, states)
    np.testing.assert_allclose(seq, kernels.reference_scan(cell, x, states)[0], atol=2e-6)


class FakeBlas:
    def __init__(self, internal_api="openblas", architecture="SkylakeX", threads=1):
        self.internal_api, self.architecture, self.threads = internal_api, architecture, threads

    def get_num_threads(self):
        return self.threads


@pytest.mark.parametrize(
    "lib, want",
    [
        (FakeBlas(), threads.UNPACKED_MACS),
        (FakeBlas(architecture="SapphireRapids"), threads.UNPACKED_MACS),
        (FakeBlas(threads=2), 0),  # products taken unpacked run on one thread: not while BLAS runs two
        (FakeBlas(architecture="Haswell"), 0),  # where the cuts cost 1-6%
        (FakeBlas(internal_api="mkl", architecture=None), 0),
    ],
)
def test_unpacked_products_only_on_openblas_avx512_kernels_on_one_thread(monkeypatch, lib, want):
    monkeypatch.setattr(threads, "_controller", [lib])
    assert threads.unpacked_macs() == want
    monkeypatch.setattr(threads, "_controller", None)  # threadpoolctl not loaded (tiny products): nothing to cut
    assert threads.unpacked_macs() == 0


def test_scan_cuts_the_recurrent_product_where_blas_takes_blocks_unpacked(monkeypatch):
    """kernels.scan hands fastpath threads.unpacked_macs(), and the blocked product gives the
    reference's result."""
    from lstmctl import fastpath

    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.setattr(threads, "unpacked_macs", lambda: 16 * 6 * 32)  # blocks of 16 rows of the 128 of U^T at batch 6, H32
    seen = []
    real = fastpath._in_blocks
    monkeypatch.setattr(fastpath, "_in_blocks", lambda *a: (seen.append(a[3]), real(*a))[1])
    cell, x, states = lstm(6, units=32)
    seq, final = kernels.scan(cell, x, states)
    assert seen == [16 * 6 * 32]
    want_seq, want_final = kernels.reference_scan(cell, x, states)
    np.testing.assert_allclose(seq, want_seq, atol=2e-6)
    for a, b in zip(final, want_final):
        np.testing.assert_allclose(a, b, atol=2e-6)
