#!/usr/bin/env python3
"""Golden answers for weir's sliding windows, computed independently of the Rust and Lua
code: brute force over the raw event list (no panes rings, no running totals).

Writes features/tests/golden/windows.json, read by features/tests/golden.rs (embedded
store) and tests/tests/store_parity.rs (Redis store).

The semantics, as documented in features/src/windows.rs:
- a window of length L cut in panes of P covers, as of event time t, the events whose
  pane floor(u / P) lies in [floor(t / P) - L/P + 1, floor(t / P)];
- per (topic, partition) an entity keeps the highest applied offset: an observation at
  or below it is "replayed" and changes nothing;
- otherwise, with max_t the entity's newest applied event time, an event with
  t < max_t - lateness is "late" and not applied (its offset is still consumed);
- every observation answers count and sum per window as of its own event time, over the
  events applied so far (itself included when applied).

Values are multiples of 1/4, so every sum is exact in binary and the stores must match
these answers exactly, whatever order they add and subtract in.

Run: python3 tools/window_golden.py   (standard library only)
"""
import json
import os

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a multiple of every pane below
S = 1000
WINDOWS = [
    {"name": "10s", "length_ms": 10 * S, "pane_ms": 2 * S},
    {"name": "30s", "length_ms": 30 * S, "pane_ms": 5 * S},
]
LATENESS = 7 * S

# (time offset ms from T0, value, partition, offset, what it exercises)
EVENTS = [
    (0, 10.0, 0, 0, "first event, exactly on a pane boundary of both windows"),
    (1_999, 2.5, 0, 1, "last ms of the same 2 s pane"),
    (2_000, 0.25, 0, 2, "first ms of the next 2 s pane"),
    (9_999, 1.0, 0, 3, "last ms of the 10 s window that still holds the first event"),
    (10_000, 100.0, 0, 4, "10s window slides: pane 0 (events 0 and 1) leaves"),
    (5_000, 7.0, 0, 5, "out of order, 5 s behind max, within lateness"),
    (3_000, 0.5, 0, 6, "exactly lateness behind max_t (10 000 - 7 000): applied"),
    (2_999, 1000.0, 0, 7, "one ms more than lateness behind: late, not applied"),
    (10_000, 100.0, 0, 4, "replay of #4 itself (offset 4, at or below the fence 7)"),
    (2_999, 1000.0, 0, 7, "replay of the late one: its offset was consumed"),
    (6_000, 3.0, 1, 4, "same offset, another partition: its own fence, applied"),
    (31_000, 4.0, 0, 8, "30s window slides past its first pane; 10s past everything"),
    (29_000, 0.75, 1, 2, "partition 1 offset below its fence 4: replayed"),
    (25_000, 0.75, 1, 5, "out of order within lateness on partition 1"),
    (3_600_000, 50.0, 0, 9, "a gap far longer than both rings: old panes expire"),
    (3_593_000, 8.0, 0, 10, "exactly lateness behind after the gap; stale slots ignored"),
    (3_592_999, 8.0, 0, 11, "late after the gap"),
    (3_600_001, 0.25, 0, 12, "same pane as the newest"),
]


def pane(t, p):
    return t // p  # Python's // floors, like div_euclid for positive panes


def window_at(applied, t, w):
    last = pane(t, w["pane_ms"])
    first = last - w["length_ms"] // w["pane_ms"] + 1
    inside = [v for (u, v) in applied if first <= pane(u, w["pane_ms"]) <= last]
    return [float(len(inside)), float(sum(inside))]


def run():
    fences = {}
    applied = []
    max_t = None
    expected = []
    for (dt, value, partition, offset, note) in EVENTS:
        t = T0 + dt
        key = ("transactions", partition)
        if key in fences and offset <= fences[key]:
            status = "replayed"
        else:
            fences[key] = offset
            if max_t is not None and t < max_t - LATENESS:
                status = "late"
            else:
                status = "applied"
                applied.append((t, value))
                max_t = t if max_t is None else max(max_t, t)
        values = [x for w in WINDOWS for x in window_at(applied, t, w)]
        expected.append({"status": status, "values": values, "note": note})
    current = [x for w in WINDOWS for x in window_at(applied, max_t, w)]
    return expected, current, max_t


def hand_checks(expected, current):
    """A few answers worked out by hand, so the brute force itself is checked."""
    # #4 at 10 000: 10s window [pane 1, pane 5] of 2 s = {#2, #3, #4} = 0.25 + 1 + 100;
    # 30s window [pane -4, pane 2] of 5 s = all five = 113.75.
    assert expected[4]["values"] == [3.0, 101.25, 5.0, 113.75], expected[4]
    # #5 at 5 000 (out of order): 10s [pane -2, pane 2] covers [-4 000, 6 000): {#0, #1,
    # #2, #5} = 19.75 (#3 at 9 999 is after it); 30s [pane -4, pane 1] covers
    # [-20 000, 10 000): {#0 .. #3, #5} = 20.75 (#4 at 10 000 is after it).
    assert expected[5]["values"] == [4.0, 19.75, 5.0, 20.75], expected[5]
    # #7 late: not applied; as of 2 999 the 10s window [pane -4, pane 1] holds #0, #1, #2
    # and #6 (3 000 is pane 1) = 13.25; 30s [pane -5, pane 0] = #0, #1, #2, #6 too.
    assert expected[7]["status"] == "late"
    assert expected[7]["values"] == [4.0, 13.25, 4.0, 13.25], expected[7]
    # #14 after the gap: only itself.
    assert expected[14]["values"] == [1.0, 50.0, 1.0, 50.0], expected[14]
    # End, as of 3 600 001 (relative to T0): 10s covers 2 s panes [1 796, 1 800], i.e.
    # [3 592 000, 3 602 000): #14, #15 (3 593 000) and #17 = 58.25; 30s covers 5 s panes
    # [715, 720], i.e. [3 575 000, 3 605 000): the same three. #16 was late.
    assert current == [3.0, 58.25, 3.0, 58.25], current


def main():
    expected, current, max_t = run()
    hand_checks(expected, current)
    out = {
        "generated_by": "tools/window_golden.py",
        "t0": T0,
        "lateness_ms": LATENESS,
        "windows": WINDOWS,
        "events": [
            {"t": T0 + dt, "value": v, "topic": "transactions", "partition": p, "offset": o}
            for (dt, v, p, o, _) in EVENTS
        ],
        "expected": expected,
        "current": current,
        "max_t": max_t,
    }
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "features", "tests", "golden", "windows.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.normpath(path)}: {len(expected)} observations")


if __name__ == "__main__":
    main()
