"""Comparing results with a reference: per-key errors, pass/fail, where a sequence diverges."""

from dataclasses import dataclass, field

import numpy as np

from ..errors import LstmctlError, UsageError

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
    reference_key: str | None = None  # the reference's name for the array (with --map, may differ from ours)
    result_key: str | None = None  # the result key it was compared with
    note: str | None = None  # e.g. the batch axis of 1 dropped to match a one-sample reference

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


def parse_mapping(values, what: str = "map") -> dict:
    """--map REF_KEY=OUR_KEY (repeatable) -> {reference key: result key}."""
    mapping = {}
    for item in values:
        ref_key, sep, our_key = item.partition("=")
        if not sep or not ref_key or not our_key:
            raise UsageError(f"--{what} {item!r}: expected REFERENCE_KEY=RESULT_KEY")
        if ref_key in mapping and mapping[ref_key] != our_key:
            raise UsageError(f"--{what}: reference key {ref_key!r} is mapped twice")
        mapping[ref_key] = our_key
    return mapping


def compare_arrays(key, got, ref, atol, rtol) -> KeyReport:
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    note = None
    if got.shape != ref.shape and got.ndim == ref.ndim + 1 and got.shape[0] == 1 and got.shape[1:] == ref.shape:
        got, note = got[0], f"one-sample reference {ref.shape}: compared with sample 0 of {(1, *ref.shape)}"
    if got.shape != ref.shape:
        return KeyReport(key, ref.shape, False, atol, rtol, problem=f"shape {got.shape} here, {ref.shape} in the reference")
    diff = np.abs(got - ref)
    rel = diff / np.maximum(np.abs(ref), 1e-12)
    ok = bool(np.all(diff <= atol + rtol * np.abs(ref)))
    report = KeyReport(key, ref.shape, ok, atol, rtol, float(diff.max(initial=0)), float(diff.mean()) if diff.size else 0.0,
                       float(rel.max(initial=0)), float(rel.mean()) if rel.size else 0.0)  # fmt: skip
    report.note = note
    if not ok and ref.ndim == 3:  # (batch, time, units): a sequence
        report.first_divergent_step, report.growth = divergence(got, ref, atol, rtol, time_axis=1)
    elif not ok and note and ref.ndim == 2:  # one sample's (time, units) sequence
        report.first_divergent_step, report.growth = divergence(got, ref, atol, rtol, time_axis=0)
    return report


def compare(result: dict, reference, atol=(), rtol=(), mapping=None, what="lstmctl's result") -> list:
    """Reports for every key of `reference` (a dict, or one array compared with the model output).

    `mapping` ({reference key: result key}, from --map) compares a reference written with its own
    names (seq, h, c) with our keys; a tolerance KEY=VALUE may name either key. A reference array
    without the batch axis, (time, units), is compared with a result of batch 1, (1, time, units)."""
    a_default, a_keys = parse_tolerances(atol, "atol")
    r_default, r_keys = parse_tolerances(rtol, "rtol")
    mapping = dict(mapping or {})
    if not isinstance(reference, dict):
        if "output" not in mapping:
            outputs = [k for k in result if k == "output" or k.startswith("output_")]
            if outputs != ["output"]:
                raise LstmctlError(f"an .npy reference is compared with the model's single output; this model has {len(outputs)} outputs: use an .npz with keys {', '.join(outputs)}, or --map output=KEY")
        reference = {"output": reference}
    for ref_key, our_key in mapping.items():
        if ref_key not in reference:
            raise UsageError(f"--map {ref_key}={our_key}: the reference holds no key {ref_key!r} (its keys: {', '.join(reference)})")
        if our_key not in result:
            raise UsageError(f"--map {ref_key}={our_key}: {what} holds no key {our_key!r} (its keys: {', '.join(result)})")
    known = set(reference) | set(mapping.values())
    unknown = sorted((set(a_keys) | set(r_keys)) - known)
    if unknown:
        raise UsageError(f"tolerance given for {unknown[0]!r}, which the reference does not hold")
    reports = []
    for ref_key, ref in reference.items():
        our_key = mapping.get(ref_key, ref_key)
        key = ref_key if our_key == ref_key else f"{ref_key}={our_key}"

        def tol(per_key, default):
            return per_key.get(ref_key, per_key.get(our_key, default))

        atol_k, rtol_k = tol(a_keys, a_default), tol(r_keys, r_default)
        if our_key not in result:
            report = KeyReport(key, np.shape(ref), False, atol_k, rtol_k, problem=f"not in {what}")
        else:
            report = compare_arrays(key, result[our_key], ref, atol_k, rtol_k)
        report.reference_key, report.result_key = ref_key, our_key
        reports.append(report)
    return reports


def compare_files(result_path: str, reference_path: str, atol=(), rtol=(), mapping=None) -> list:
    """`lstmctl compare RESULT REFERENCE`: every array of REFERENCE (an .npz as `run --format npz`
    writes, or an .npy) against RESULT's array of the same key (or the key `mapping` names).
    Unreadable or unsafe files raise LstmctlError (exit 3)."""
    from ..arrays.inputs import load_arrays

    result = load_arrays(result_path)
    if not isinstance(result, dict):
        result = {"output": result}
    return compare(result, load_arrays(reference_path), atol, rtol, mapping, what="the result file")
