"""How many threads a recurrent layer's scan may use, and how (issue 29).

BLAS's threads meet at every product, so each step waits for the last of them to be scheduled:
on a machine whose cores are taken (other processes, a Dask pool, `xargs -P`), that wait is most
of the time (benchmarks/bench_forward.py, docs/speed.md). So a scan asks for threads only when its
per-step product is big enough to gain from them, and only as many as the CPUs this process may
use (its CPU affinity, its cgroup's CPU quota); as BLAS's own threads when other processes leave
those CPUs free, else as slices of the batch on threads of their own that never wait for each
other (see plan). `--threads N` (the CLI), `LSTMCTL_THREADS` or `use(N)` fix the number instead.

BLAS's number of threads is set around each scan with threadpoolctl (what scikit-learn uses;
pure Python), and never above what BLAS had when the scan began, so an outer `threadpool_limits`
or `OPENBLAS_NUM_THREADS` still holds.
"""

import contextlib
import os
import threading

from .errors import UsageError

ENV = "LSTMCTL_THREADS"
# Multiply-adds of one recurrent product per thread worth starting: up to 0.5M (H64 B32, H128 B8,
# H256 B1) OpenBLAS ran one thread anyway; from 1M (H256 B4 to B32, H512) two threads took
# 0.55x the time of one where a second core was free (2 cores, 2026-12-07).
MIN_MACS_PER_THREAD = 1 << 19

# Below this many multiply-adds no BLAS threads a product (OpenBLAS: under 9216 for a
# matrix-vector product, 262144 for a matrix product): the scan leaves BLAS alone, and a small
# model's run does not even load threadpoolctl (30 ms of CPU with the libraries it inspects).
UNTHREADED_MACS = 1 << 12
MAX_THREADS = 1024
# OpenBLAS's AVX-512 kernels (SkylakeX and its successors) multiply a matrix product of up to 10^6
# multiply-adds without packing it first. A step's recurrent product cut into row blocks that
# small took 16-62% less time on one thread (H128 to H512, batch 4 to 64; AMD Zen 4, 2026-12-07);
# with the AVX2 kernels (OPENBLAS_CORETYPE=Haswell) the same cuts cost 1-6%, so only these.
UNPACKED_MACS = 10**6
UNPACKED_KERNELS = {"skylakex", "cooperlake", "sapphirerapids"}
_fixed = None  # set by the CLI's --threads
_local = threading.local()  # use()'s number, per thread


def parse(value, where: str) -> int:
    """A thread count given by the user: a whole number ≥ 1, else a one-line usage error."""
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_THREADS:
        raise UsageError(f"{where}: expected a whole number of threads from 1 to {MAX_THREADS}, got {text[:20]!r}")
    return int(text)


def fixed():
    """The number the user fixed: use() in this thread, else --threads / set_fixed, else
    LSTMCTL_THREADS, else None (the policy)."""
    for n in (getattr(_local, "n", None), _fixed):
        if n is not None:
            return n
    env = os.environ.get(ENV)
    return parse(env, ENV) if env not in (None, "") else None


def set_fixed(n):
    """Fix the number of threads for this process (None: back to the policy)."""
    global _fixed
    _fixed = None if n is None else parse(n, "threads")


@contextlib.contextmanager
def use(n):
    """`with lstmctl.threads.use(1): model.run(x)`: the scans this thread runs inside use n
    threads (a Dask task per CPU: one each)."""
    before = getattr(_local, "n", None)
    _local.n = parse(n, "threads")
    try:
        yield
    finally:
        _local.n = before


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except (OSError, UnicodeDecodeError):
        return None


def _quota(max_text):
    """CPUs a cgroup quota grants: 'max 100000' none, '150000 100000' 1 (whole CPUs, at least one:
    a thread throttled part of each period holds the others back at every step)."""
    try:
        quota, period = (int(v) for v in max_text.split()[:2])
    except (AttributeError, ValueError):
        return None
    return max(1, quota // period) if quota > 0 and period > 0 else None


def cgroup_cpus(proc_cgroup=None, root="/sys/fs/cgroup"):
    """The CPU quota of this process's cgroup and its ancestors (v2 cpu.max, v1
    cpu.cfs_quota_us / cpu.cfs_period_us), in whole CPUs; None when there is none or it cannot
    be read (a file missing or malformed is no quota)."""
    text = _read("/proc/self/cgroup") if proc_cgroup is None else proc_cgroup
    found = []
    for line in (text or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        controllers, path = parts[1].split(","), parts[2].strip("/")
        if parts[0] == "0" and parts[1] == "":  # v2: one unified hierarchy
            bases = [root]
            reader = lambda d: _quota(_read(os.path.join(d, "cpu.max")))  # noqa: E731
        elif "cpu" in controllers:  # v1: the cpu controller's own mount
            bases = [os.path.join(root, parts[1]), os.path.join(root, "cpu"), os.path.join(root, "cpu,cpuacct")]
            reader = lambda d: _quota(f"{_read(os.path.join(d, 'cpu.cfs_quota_us'))} {_read(os.path.join(d, 'cpu.cfs_period_us'))}")  # noqa: E731
        else:
            continue
        pieces = [p for p in path.split("/") if p and p != ".."]
        for base in dict.fromkeys(bases):
            for depth in range(len(pieces), -1, -1):  # the cgroup, then each ancestor (a container sees its own as the root)
                cpus = reader(os.path.join(base, *pieces[:depth]))
                if cpus is not None:
                    found.append(cpus)
    return min(found) if found else None


_usable = None


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity, capped by its cgroup's quota (computed once)."""
    global _usable
    if _usable is None:
        try:
            cpus = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpus = os.cpu_count() or 1
        quota = cgroup_cpus()
        _usable = max(1, min(cpus, quota) if quota else cpus)
    return _usable


def others_running(loadavg=None, own=None):
    """Threads of other processes running or waiting for a CPU right now: /proc/loadavg's
    runnable count, less this process's runnable threads (BLAS's own threads spin a while after
    each product). 0 where /proc is missing."""
    text = _read("/proc/loadavg") if loadavg is None else loadavg
    try:
        runnable = int(text.split()[3].split("/")[0])
    except (AttributeError, IndexError, ValueError):
        return 0
    return max(0, runnable - (_own_running() if own is None else own))


def _own_running():
    count = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 1
    for task in tasks:
        stat = _read(f"/proc/self/task/{task}/stat")
        if stat and stat.rpartition(")")[2].split()[:1] == ["R"]:
            count += 1
    return max(1, count)


def plan(macs: int, batch: int) -> tuple:
    """(BLAS threads, batch slices) for a scan whose per-step product has `macs` multiply-adds:
    - the number the user fixed, as BLAS threads;
    - one thread below MIN_MACS_PER_THREAD per thread;
    - else as many as usable CPUs: as BLAS's own threads when other processes leave that many
      CPUs, plus one (they split each product finer; two of them beat one beside one busy process,
      44 against 66 ms at B32 H256 on 2 CPUs); else as slices of the batch, each on a thread of its
      own with one BLAS thread (fastpath.scan's `parts`), since BLAS's threads meet at every step
      and wait there for whichever is not scheduled: beside two spinning processes, B32 H256 took
      3936 ms on two BLAS threads, 334 on one, 266 in two slices (load 9, 2026-12-07);
    - as slices too where BLAS cuts each slice's product into blocks it multiplies unpacked
      (unpacked_kernels, and over UNPACKED_MACS a slice): on a quiet machine two slices took
      18.1 against 19.4 ms on two BLAS threads at B32 H256, 6.0 against 8.8 at B8, 31.9 against
      39.0 at B64; at B16 H128 (slices of 0.5M) they lost, 5.3 against 3.6 ms."""
    n = fixed()
    if n is not None:
        return n, 1
    if macs < 2 * MIN_MACS_PER_THREAD:
        return 1, 1
    want = min(usable_cpus(), macs // MIN_MACS_PER_THREAD)
    if want == 1:
        return 1, 1
    quiet = usable_cpus() + 1 - others_running() >= want  # the CPUs no other thread is running on, and this one's
    if quiet and not (unpacked_kernels() and macs // want > UNPACKED_MACS):
        return want, 1
    return 1, min(want, batch)


_controller = None


def _blas():
    """threadpoolctl's handle on the BLAS libraries loaded (NumPy's), made once; None without
    threadpoolctl (the BLAS then keeps its own number of threads)."""
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _controller = False
        else:
            _controller = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
    return _controller or None


@contextlib.contextmanager
def limited(macs: int, batch: int = 1):
    """Inside the block BLAS runs on plan()'s number of threads (no more than it had before,
    unless the user fixed the number), and on its number before after it; the block gets the
    number of batch slices to run on threads of their own. Only in the main thread: once that
    thread has set a number, OpenBLAS (0.3.31) ignores one set from another thread, so the scans
    of a thread pool run on the number the main thread set around the pool, in one slice (see
    examples/dask_shards.py)."""
    user = fixed() is not None
    libs = _blas() if user or macs >= UNTHREADED_MACS else None
    if not libs or threading.current_thread() is not threading.main_thread():
        yield 1
        return
    n, parts = plan(macs, batch)
    before = [lib.get_num_threads() for lib in libs]
    if not user:
        n, parts = min(n, *before), min(parts, *before)  # an outer limit (OPENBLAS_NUM_THREADS, threadpool_limits) holds
    for lib, now in zip(libs, before):
        if now != n:
            lib.set_num_threads(n)
    try:
        yield max(1, parts)
    finally:
        for lib, now in zip(libs, before):
            if lib.get_num_threads() != now:
                lib.set_num_threads(now)


def unpacked_kernels() -> bool:
    """NumPy's BLAS is OpenBLAS with one of UNPACKED_KERNELS; False while threadpoolctl is not
    loaded (products too small to thread, which need no cutting)."""
    libs = _controller or None
    return bool(libs) and all(lib.internal_api == "openblas" and str(getattr(lib, "architecture", "")).lower() in UNPACKED_KERNELS for lib in libs)


def unpacked_macs() -> int:
    """UNPACKED_MACS where unpacked_kernels() and BLAS runs one thread now (a product it takes
    unpacked runs on one thread), else 0: the size of the blocks fastpath cuts products into."""
    return UNPACKED_MACS if unpacked_kernels() and all(lib.get_num_threads() == 1 for lib in _controller) else 0


def blas_threads():
    """BLAS's number of threads now (for tests and the benchmark); None without threadpoolctl."""
    libs = _blas()
    return libs[0].get_num_threads() if libs else None
