"""Best-window search over a regular series of slot intensities (pure numpy, no Django).

Conventions shared by every function here:

- `values` is a 1-D float array, one entry per slot of equal length (the caller picks
  the slot length, typically 30 minutes). NaN marks a slot with no data; a window that
  touches a NaN slot is never chosen.
- Slot indices are relative to `values[0]`. `deadline_slot` is exclusive: the job's
  last slot must have an index below it (the job ends by the start of that slot).
- Ties are broken towards the earliest start (run sooner when it costs nothing).

Contiguous search is O(n) with prefix sums; the interruptible search is O(n) with
np.argpartition. bench/shifting.py measures both on a year of hourly data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Window sums that differ by less than this (relative) count as equal, so float rounding in
# the prefix sums cannot pick a later window over an equally good earlier one.
_TIE_RELATIVE_TOLERANCE = 1e-9


class NoFeasibleWindow(ValueError):
    """No window of the requested size fits before the deadline on slots with data."""


@dataclass(frozen=True)
class ContiguousWindow:
    start_slot: int  # first slot of the window
    duration_slots: int
    mean: float  # mean of values[start_slot:start_slot + duration_slots]


@dataclass(frozen=True)
class SlotSet:
    slots: np.ndarray  # sorted slot indices, int64
    mean: float  # mean of values[slots]


def _checked(values: np.ndarray, count: int, deadline_slot: int | None) -> np.ndarray:
    """values[:deadline] as float64, after checking the request makes sense."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {values.shape}")
    if count < 1:
        raise ValueError(f"the job needs at least one slot, got {count}")
    deadline = len(values) if deadline_slot is None else int(deadline_slot)
    if not 0 <= deadline <= len(values):
        raise ValueError(f"deadline_slot {deadline} is outside 0..{len(values)}")
    if count > deadline:
        raise NoFeasibleWindow(f"a job of {count} slots cannot finish within {deadline} slots")
    return values[:deadline]


def _window_sums(values: np.ndarray, k: int) -> np.ndarray:
    """Sum of every window of k slots (prefix sums); NaN where a window has a gap."""
    sums = np.empty(len(values) + 1)
    sums[0] = 0.0
    missing = np.isnan(values)
    if not missing.any():
        np.cumsum(values, out=sums[1:])
        return sums[k:] - sums[:-k]
    np.cumsum(np.where(missing, 0.0, values), out=sums[1:])
    gaps = np.concatenate(([0], np.cumsum(missing)))
    window = sums[k:] - sums[:-k]
    window[(gaps[k:] - gaps[:-k]) > 0] = np.nan
    return window


def window_means(values: np.ndarray, *, duration_slots: int) -> np.ndarray:
    """Mean of every contiguous window of `duration_slots`; NaN where a window has a gap.

    Entry i is the mean of values[i:i + duration_slots]; the result has
    len(values) - duration_slots + 1 entries.
    """
    values = _checked(values, duration_slots, None)
    return _window_sums(values, duration_slots) / duration_slots


def best_contiguous_window(values: np.ndarray, *, duration_slots: int,
                           deadline_slot: int | None = None) -> ContiguousWindow:
    """The contiguous run of `duration_slots` slots with the lowest mean, ending by the deadline.

    Raises NoFeasibleWindow when every window touches a slot without data (or the job
    is longer than the time to the deadline).
    """
    values = _checked(values, duration_slots, deadline_slot)
    sums = _window_sums(values, duration_slots)
    gaps = np.isnan(sums)
    if gaps.all():
        raise NoFeasibleWindow(f"no {duration_slots}-slot window without gaps before the deadline")
    lowest = sums[~gaps].min() if gaps.any() else sums.min()
    tolerance = _TIE_RELATIVE_TOLERANCE * max(1.0, abs(float(lowest)))
    start = int(np.argmax(sums <= lowest + tolerance))  # the first True; NaN compares False
    return ContiguousWindow(start_slot=start, duration_slots=duration_slots,
                            mean=float(np.mean(values[start:start + duration_slots])))


def best_slots(values: np.ndarray, *, count: int, deadline_slot: int | None = None) -> SlotSet:
    """The `count` lowest-intensity slots before the deadline (an interruptible job).

    Among equal values the earlier slots are taken. Raises NoFeasibleWindow when fewer
    than `count` slots before the deadline have data.
    """
    values = _checked(values, count, deadline_slot)
    missing = np.isnan(values)
    candidates = np.flatnonzero(~missing) if missing.any() else np.arange(len(values))
    if len(candidates) < count:
        raise NoFeasibleWindow(f"only {len(candidates)} slots with data before the deadline, the job needs {count}")
    candidate_values = values[candidates]
    if count == len(candidates):
        chosen = candidates
    else:
        threshold = candidate_values[np.argpartition(candidate_values, count - 1)[count - 1]]  # count-th lowest
        below = candidates[candidate_values < threshold]
        at_threshold = candidates[candidate_values == threshold]  # in index order: earlier slots first
        chosen = np.sort(np.concatenate((below, at_threshold[:count - len(below)])))
    return SlotSet(slots=chosen.astype(np.int64), mean=float(np.mean(values[chosen])))


def resample_to_slots(*, starts_s: np.ndarray, ends_s: np.ndarray, values: np.ndarray,
                      grid_start_s: float, slot_s: float, n_slots: int) -> np.ndarray:
    """Time-weighted mean of piecewise-constant points on a regular grid of slots.

    Points are [start, end) intervals in seconds (any epoch), sorted and not
    overlapping, each with a constant value. A slot that is not fully covered by
    points is NaN: a partly known slot is not evidence for the whole slot.
    """
    starts_s = np.asarray(starts_s, dtype=np.float64)
    ends_s = np.asarray(ends_s, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    edges = grid_start_s + slot_s * np.arange(n_slots + 1, dtype=np.float64)
    if len(starts_s) == 0:
        return np.full(n_slots, np.nan)
    if np.any(ends_s <= starts_s) or np.any(starts_s[1:] < ends_s[:-1]):
        raise ValueError("points must be non-empty, sorted intervals that do not overlap")
    # The integral of a piecewise-constant function is piecewise linear, so np.interp
    # evaluates it exactly at the slot edges; gaps between points contribute nothing.
    lengths = ends_s - starts_s
    area = np.cumsum(values * lengths)
    covered = np.cumsum(lengths)
    knots_t = np.empty(2 * len(starts_s))
    knots_t[0::2], knots_t[1::2] = starts_s, ends_s
    knots_area = np.empty_like(knots_t)
    knots_area[0::2], knots_area[1::2] = area - values * lengths, area
    knots_cover = np.empty_like(knots_t)
    knots_cover[0::2], knots_cover[1::2] = covered - lengths, covered
    slot_area = np.diff(np.interp(edges, knots_t, knots_area))
    slot_cover = np.diff(np.interp(edges, knots_t, knots_cover))
    out = slot_area / slot_s
    # A millisecond of slack absorbs float rounding of epoch seconds.
    out[slot_cover < slot_s - 1e-3] = np.nan
    return out
