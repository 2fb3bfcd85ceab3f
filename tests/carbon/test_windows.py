"""carbon.windows against brute force (property-based) and on hand-checked cases."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbon import windows

# Integer-valued intensities make every window sum exact, so ties are exact and the
# earliest-start rule can be checked exactly; NaN marks slots without data.
slot_value = st.one_of(st.integers(min_value=0, max_value=900).map(float), st.just(float("nan")))


@st.composite
def series_and_job(draw, max_len=120):
    values = draw(st.lists(slot_value, min_size=1, max_size=max_len))
    deadline = draw(st.integers(min_value=1, max_value=len(values)))
    count = draw(st.integers(min_value=1, max_value=deadline))
    return np.array(values), count, deadline


def brute_contiguous(values, k, deadline):
    best = None
    for s in range(deadline - k + 1):
        window = values[s:s + k]
        if np.isnan(window).any():
            continue
        total = window.sum()
        if best is None or total < best[1]:
            best = (s, total)
    return best


@settings(max_examples=400, deadline=None)
@given(series_and_job())
def test_contiguous_window_matches_brute_force(case):
    values, k, deadline = case
    expected = brute_contiguous(values, k, deadline)
    if expected is None:
        with pytest.raises(windows.NoFeasibleWindow):
            windows.best_contiguous_window(values, duration_slots=k, deadline_slot=deadline)
        return
    found = windows.best_contiguous_window(values, duration_slots=k, deadline_slot=deadline)
    assert found.start_slot == expected[0]  # the earliest of the lowest
    assert found.mean == expected[1] / k
    assert found.start_slot + k <= deadline


@settings(max_examples=400, deadline=None)
@given(series_and_job())
def test_interruptible_slots_match_brute_force(case):
    values, k, deadline = case
    usable = [(values[i], i) for i in range(deadline) if not np.isnan(values[i])]
    if len(usable) < k:
        with pytest.raises(windows.NoFeasibleWindow):
            windows.best_slots(values, count=k, deadline_slot=deadline)
        return
    expected = sorted(i for _, i in sorted(usable)[:k])  # lowest values, earlier first on ties
    found = windows.best_slots(values, count=k, deadline_slot=deadline)
    assert found.slots.tolist() == expected
    assert found.mean == sum(values[i] for i in expected) / k


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1000, allow_nan=False), min_size=1, max_size=200),
       st.integers(min_value=1, max_value=200))
def test_contiguous_window_is_optimal_on_real_valued_series(values, k):
    values = np.array(values)
    k = min(k, len(values))
    found = windows.best_contiguous_window(values, duration_slots=k)
    brute = min(values[s:s + k].mean() for s in range(len(values) - k + 1))
    assert found.mean == pytest.approx(brute, rel=1e-9, abs=1e-9)


def test_flat_series_runs_at_the_first_slot():
    # Prefix-sum rounding must not make a later window of a flat series look cheaper.
    values = np.full(8760, 0.1)
    assert windows.best_contiguous_window(values, duration_slots=7).start_slot == 0
    assert windows.best_slots(values, count=3).slots.tolist() == [0, 1, 2]


def test_window_means_marks_windows_with_gaps():
    means = windows.window_means(np.array([1.0, 3.0, np.nan, 5.0, 7.0]), duration_slots=2)
    assert means[0] == 2.0 and means[3] == 6.0
    assert np.isnan(means[1]) and np.isnan(means[2])


def test_job_longer_than_deadline_is_infeasible():
    with pytest.raises(windows.NoFeasibleWindow, match="cannot finish within 3 slots"):
        windows.best_contiguous_window(np.arange(10.0), duration_slots=4, deadline_slot=3)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="at least one slot"):
        windows.best_slots(np.arange(3.0), count=0)
    with pytest.raises(ValueError, match="outside 0..3"):
        windows.best_slots(np.arange(3.0), count=1, deadline_slot=4)


def test_resample_weights_by_time_and_leaves_partial_slots_empty():
    # 15-minute points 10, 20, 30, 40 from t=0, then a gap, then an hour of 50 from t=3600.
    starts = np.array([0, 900, 1800, 2700, 3600], dtype=float)
    ends = np.array([900, 1800, 2700, 3600, 7200], dtype=float)
    values = np.array([10, 20, 30, 40, 50], dtype=float)
    out = windows.resample_to_slots(starts_s=starts, ends_s=ends, values=values,
                                    grid_start_s=0, slot_s=1800, n_slots=5)
    assert out[:4].tolist() == [15.0, 35.0, 50.0, 50.0]
    assert np.isnan(out[4])  # 7200..9000 has no data
    shifted = windows.resample_to_slots(starts_s=starts, ends_s=ends, values=values,
                                        grid_start_s=-900, slot_s=1800, n_slots=2)
    assert np.isnan(shifted[0])  # -900..900 is half without data
    assert shifted[1] == 25.0  # 900..2700: half at 20, half at 30
