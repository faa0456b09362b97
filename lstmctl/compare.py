"""Comparing results with a reference: per-key errors, pass/fail, where a sequence diverges."""

from dataclasses import dataclass, field

import numpy as np

from .errors import LstmctlError, UsageError

DEFAULT_TOL = 1e-5


@dataclass
class KeyReport:
    key: str
    shape: tuple
    ok: bool
    atol: float
    rtol: float
    max_abs: float | None = None
    mean_abs: float | None = None
    max_rel: float | None = None
    mean_rel: float | None = None
    first_divergent_step: int | None = None
    growth: list = field(default_factory=list)  # max |error| per step from the divergence on
    problem: str | None = None  # missing key, shape mismatch

    def as_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def parse_tolerances(values, what: str):
    """--atol 1e-5 --atol lstm/c=1e-4 -> (default, {key: value})."""
    default, per_key = DEFAULT_TOL, {}
    for item in values:
        key, sep, number = item.rpartition("=")
        try:
            value = float(number)
        except ValueError:
            raise UsageError(f"--{what} {item!r}: expected a number or KEY=NUMBER") from None
        if not value >= 0:
            raise UsageError(f"--{what} {item!r}: tolerance must be a non-negative number")
        if sep:
            per_key[key] = value
        else:
            default = value
    return default, per_key


def divergence(got: np.ndarray, ref: np.ndarray, atol: float, rtol: float, time_axis: int):
    """First index along `time_axis` where any element is out of tolerance, and the max |error|
    at each step from there on (how the error grows once it starts)."""
    bad = np.abs(got - ref) > atol + rtol * np.abs(ref)
    other = tuple(a for a in range(got.ndim) if a != time_axis)
    per_step_bad = bad.any(axis=other) if other else bad
    if not per_step_bad.any():
        return None, []
    first = int(np.argmax(per_step_bad))
    err = np.abs(got - ref).max(axis=other) if other else np.abs(got - ref)
    return first, [float(e) for e in err[first:]]


def compare_arrays(key, got, ref, atol, rtol) -> KeyReport:
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        return KeyReport(key, ref.shape, False, atol, rtol, problem=f"shape {got.shape} here, {ref.shape} in the reference")
    diff = np.abs(got - ref)
    rel = diff / np.maximum(np.abs(ref), 1e-12)
    ok = bool(np.all(diff <= atol + rtol * np.abs(ref)))
    report = KeyReport(key, ref.shape, ok, atol, rtol, float(diff.max(initial=0)), float(diff.mean()) if diff.size else 0.0,
                       float(rel.max(initial=0)), float(rel.mean()) if rel.size else 0.0)  # fmt: skip
    if not ok and ref.ndim == 3:  # (batch, time, units): a sequence
        report.first_divergent_step, report.growth = divergence(got, ref, atol, rtol, time_axis=1)
    return report


def compare(result: dict, reference, atol=(), rtol=()) -> list:
    """Reports for every key of `reference` (a dict, or one array compared with the model output)."""
    a_default, a_keys = parse_tolerances(atol, "atol")
    r_default, r_keys = parse_tolerances(rtol, "rtol")
    if not isinstance(reference, dict):
        outputs = [k for k in result if k == "output" or k.startswith("output_")]
        if outputs != ["output"]:
            raise LstmctlError(f"an .npy reference is compared with the model's single output; this model has {len(outputs)} outputs: use an .npz with keys {', '.join(outputs)}")
        reference = {"output": reference}
    unknown = sorted((set(a_keys) | set(r_keys)) - set(reference))
    if unknown:
        raise UsageError(f"tolerance given for {unknown[0]!r}, which the reference does not hold")
    reports = []
    for key, ref in reference.items():
        atol_k, rtol_k = a_keys.get(key, a_default), r_keys.get(key, r_default)
        if key not in result:
            reports.append(KeyReport(key, np.shape(ref), False, atol_k, rtol_k, problem="not in lstmctl's result"))
            continue
        reports.append(compare_arrays(key, result[key], ref, atol_k, rtol_k))
    return reports
