#!/usr/bin/env python3
"""Golden answers for weir's feature engine, computed independently of the Rust code:
brute force over the raw event list (no panes kept, no running totals, no sketches).

Writes features/tests/golden/features.json, read by features/tests/golden.rs (embedded
store) and tests/tests/store_parity.rs (Redis store, single and cluster).

The semantics, as documented in features/src/windows/ and features/src/definitions.rs:
- a window of length L cut in panes of P covers, as of event time t, the events whose
  pane floor(u / P) lies in [floor(t / P) - L/P + 1, floor(t / P)];
- count: events in it; sum / mean / min / max: over those where the field is present
  (an empty window answers 0 for all); distinct: number of distinct present values;
- seconds_since_last: (t - u) / 1000, u the newest applied event time strictly before t,
  -1 when there is none;
- per (topic, partition) an entity keeps the highest applied offset: an observation at
  or below it is "replayed" and changes nothing;
- otherwise the event is "late" (not applied, its offset still consumed) when
  t < max_t - lateness (max_t the entity's newest applied time) or when
  t < the partition's watermark = newest event time seen on that partition before it
  (whatever its status) - lateness;
- every observation answers as of its own event time, over the events applied so far
  (itself included when applied). The late events below are close enough to the newest
  that the panes their answers need are still kept by the engine.

Values are multiples of 1/4, so every sum is exact in binary and the stores must match
these answers exactly, whatever order they add and subtract in.

Run: python3 tools/golden/window_golden.py   (standard library only)
"""
import json
import os

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a multiple of every pane below
S = 1000
LATENESS = 7 * S
WINDOWS = [
    {"name": "10s", "length_secs": 10, "pane_secs": 2},
    {"name": "30s", "length_secs": 30, "pane_secs": 5},
]
# The [features] section, as JSON (weir_features::config::FeaturesConfig).
FEATURES = {
    "windows": WINDOWS,
    "allowed_lateness_secs": LATENESS // S,
    "entities": [
        {
            "name": "user",
            "key": "user",
            "aggregations": [
                {"kind": "count"},
                {"kind": "sum", "field": "x"},
                {"kind": "mean", "field": "x"},
                {"kind": "min", "field": "x"},
                {"kind": "max", "field": "x"},
                {"kind": "distinct", "field": "d"},
                {"kind": "seconds_since_last"},
            ],
        },
        {
            "name": "item",
            "key": "item",
            "windows": ["30s"],
            "aggregations": [
                {"kind": "count"},
                {"kind": "max", "field": "x"},
                {"kind": "distinct", "field": "user", "as": "users"},
            ],
        },
    ],
}
TOPIC = "interactions"

# (time ms from T0, user, item, x or None, d or None, partition, offset, what it exercises)
EVENTS = [
    (0, "u1", "i1", 10.0, "a", 0, 0, "first event, exactly on a pane boundary of both windows"),
    (1_999, "u1", "i1", 2.5, "b", 0, 1, "last ms of the same 2 s pane"),
    (2_000, "u1", "i2", 0.25, "a", 0, 2, "next 2 s pane; a repeated distinct value"),
    (3_000, "u2", "i1", 4.0, "c", 0, 3, "second user; item i1 sees its second distinct user"),
    (9_999, "u1", "i1", None, "b", 0, 4, "x missing: counted, not summed; last ms before the 10s window slides"),
    (10_000, "u1", "i2", 1.0, None, 0, 5, "10s window slides: pane 0 (the max 10) leaves; d missing"),
    (5_000, "u1", "i1", 7.0, "d", 0, 6, "out of order, 5 s behind, within lateness"),
    (3_000, "u1", "i2", 0.5, "a", 0, 7, "exactly lateness behind u1's newest (10 000 - 7 000): applied"),
    (2_999, "u1", "i1", 1000.0, "e", 0, 8, "one ms more: late for u1, and below partition 0's watermark for i1"),
    (10_000, "u1", "i2", 1.0, None, 0, 5, "replay of #5 (offset 5 at or below both fences)"),
    (6_000, "u3", "i3", 3.0, "a", 1, 0, "another partition: new entities, its own watermark"),
    (2_500, "u4", "i3", 2.0, "x", 0, 9, "u4's first event, but below partition 0's watermark (3 000): late"),
    (31_000, "u1", "i1", 4.0, "b", 0, 10, "30s window slides past its first pane; 10s past everything"),
    (29_000, "u1", "i1", 0.75, "a", 1, 1, "partition 1, out of order within lateness"),
    (25_000, "u2", "i2", 0.75, "c", 1, 2, "u2 again after 22 s"),
    (3_600_000, "u1", "i1", 50.0, "f", 0, 11, "a gap far longer than the rings: old panes expire"),
    (3_593_000, "u1", "i2", 8.0, "a", 0, 12, "exactly lateness behind after the gap; seconds since the pre-gap event"),
    (3_592_999, "u1", "i1", 8.0, "a", 0, 13, "late after the gap (both ways)"),
    (3_600_001, "u1", "i2", 0.25, "f", 0, 14, "same pane as the newest; repeated distinct value"),
    (3_600_002, "u2", "i1", 2.0, None, 1, 3, "u2 after the gap on partition 1; i1 sees u2 again"),
]


def pane(t, p):
    return t // p  # Python's // floors, like div_euclid


def window_events(applied, t, w):
    p = w["pane_secs"] * S
    last = pane(t, p)
    first = last - w["length_secs"] // w["pane_secs"] + 1
    return [e for e in applied if first <= pane(e["t"], p) <= last]


def aggregate(kind, field, events):
    if kind == "count":
        return float(len(events))
    present = [e[field] for e in events if e[field] is not None]
    if kind == "distinct":
        return float(len(set(present)))
    if not present:
        return 0.0
    return {
        "sum": lambda: float(sum(present)),
        "mean": lambda: float(sum(present)) / len(present),
        "min": lambda: float(min(present)),
        "max": lambda: float(max(present)),
    }[kind]()


def values_at(entity, applied, t):
    windows = entity.get("windows") or [w["name"] for w in WINDOWS]
    out = []
    for name in windows:
        w = next(w for w in WINDOWS if w["name"] == name)
        inside = window_events(applied, t, w)
        for a in entity["aggregations"]:
            if a["kind"] != "seconds_since_last":
                out.append(aggregate(a["kind"], a.get("field"), inside))
    if any(a["kind"] == "seconds_since_last" for a in entity["aggregations"]):
        before = [e["t"] for e in applied if e["t"] < t]
        out.append((t - max(before)) / 1000.0 if before else -1.0)
    return out


def value_names(entity):
    windows = entity.get("windows") or [w["name"] for w in WINDOWS]
    names = []
    for name in windows:
        for a in entity["aggregations"]:
            k = a["kind"]
            if k == "count":
                names.append(f"count_{name}")
            elif k != "seconds_since_last":
                alias = a.get("as") or a["field"].replace(".", "_")
                names.append(f"{alias}_{k}_{name}")
    if any(a["kind"] == "seconds_since_last" for a in entity["aggregations"]):
        names.append("seconds_since_last")
    return names


def run():
    entities = FEATURES["entities"]
    state = {e["name"]: {} for e in entities}  # kind -> id -> {fences, applied, max_t}
    newest_on_partition = {}
    expected = []
    for (dt, user, item, x, d, partition, offset, note) in EVENTS:
        t = T0 + dt
        record = {"t": t, "user": user, "item": item, "x": x, "d": d}
        seen = newest_on_partition.get(partition)
        floor = None if seen is None else seen - LATENESS
        newest_on_partition[partition] = t if seen is None else max(seen, t)
        answer = {}
        for e in entities:
            key = record[e["key"]]
            s = state[e["name"]].setdefault(key, {"fences": {}, "applied": [], "max_t": None})
            fence = s["fences"].get((TOPIC, partition))
            if fence is not None and offset <= fence:
                status = "replayed"
            else:
                s["fences"][(TOPIC, partition)] = offset
                late_entity = s["max_t"] is not None and t < s["max_t"] - LATENESS
                late_partition = floor is not None and t < floor
                if late_entity or late_partition:
                    status = "late"
                else:
                    status = "applied"
                    s["applied"].append(record)
                    s["max_t"] = t if s["max_t"] is None else max(s["max_t"], t)
            answer[e["name"]] = {"id": key, "status": status, "values": values_at(e, s["applied"], t)}
        answer["note"] = note
        expected.append(answer)
    current = {
        e["name"]: {key: values_at(e, s["applied"], s["max_t"]) for key, s in sorted(state[e["name"]].items()) if s["max_t"] is not None}
        for e in entities
    }
    watermarks = {f"{TOPIC}:{p}": t - LATENESS for p, t in sorted(newest_on_partition.items())}
    return expected, current, watermarks


def hand_checks(expected, current):
    """Answers worked out by hand, so the brute force itself is checked.
    user values: per window (10s, 30s) [count, sum, mean, min, max, distinct], then
    seconds_since_last; item: 30s [count, max, distinct users]."""
    u = lambda i: expected[i]["user"]
    it = lambda i: expected[i]["item"]
    # #4 at 9 999, u1: 10s = 2 s panes [0, 4] = #0 #1 #2 #4; x present in three:
    # 12.75, mean 4.25, min 0.25, max 10; d {a, b}; 8 s after #2.
    assert u(4)["values"][:6] == [4.0, 12.75, 4.25, 0.25, 10.0, 2.0], u(4)
    assert u(4)["values"][12] == 7.999, u(4)
    # #5 at 10 000: 10s = panes [1, 5]: #2 #4 #5: sum 1.25, min 0.25, max 1 (10 left).
    assert u(5)["values"][:6] == [3.0, 1.25, 0.625, 0.25, 1.0, 2.0], u(5)
    # #6 at 5 000 out of order: 10s = panes [-2, 2] = #0 #1 #2 #6: 19.75, d {a, b, d};
    # newest before it is #2 at 2 000: 3 s.
    assert u(6)["values"][:6] == [4.0, 19.75, 4.9375, 0.25, 10.0, 3.0], u(6)
    assert u(6)["values"][12] == 3.0, u(6)
    # #8: late for u1 (2 999 < 10 000 - 7 000) and for i1 by partition 0's watermark.
    assert (u(8)["status"], it(8)["status"]) == ("late", "late"), expected[8]
    # #9: the replay of #5 answers as of 10 000 with #6 and #7 in: 10s panes [1, 5] =
    # #2 #4 #5 #7 (3 000 is pane 1) #6 (5 000 is pane 2).
    assert u(9)["status"] == "replayed" and u(9)["values"][:2] == [5.0, 8.75], u(9)
    # #11: u4 has never been seen, yet late: partition 0's watermark is 10 000 - 7 000.
    assert u(11)["status"] == "late" and u(11)["values"][12] == -1.0, u(11)
    # #15 after the gap: u1 holds only itself; 3 569 s since #12 at 31 000.
    assert u(15)["values"][:6] == [1.0, 50.0, 50.0, 50.0, 50.0, 1.0] and u(15)["values"][12] == 3569.0, u(15)
    # #16 at 3 593 000: the newest before it is #12 at 31 000 (fell out of the lateness
    # horizon of the kept times): 3 562 s.
    assert u(16)["values"][12] == 3562.0, u(16)
    # i1's distinct users in its 30s window at #3: {u1, u2}.
    assert it(3)["values"] == [3.0, 10.0, 2.0], it(3)
    assert current["user"]["u1"][:6] == [3.0, 58.25, 58.25 / 3, 0.25, 50.0, 2.0], current["user"]["u1"]


def main():
    expected, current, watermarks = run()
    hand_checks(expected, current)
    out = {
        "generated_by": "tools/golden/window_golden.py",
        "t0": T0,
        "topic": TOPIC,
        "features": FEATURES,
        "value_names": {e["name"]: value_names(e) for e in FEATURES["entities"]},
        "events": [
            {
                "fields": {"event_time": T0 + dt, "user": u, "item": i, "x": x, "d": d},
                "partition": p,
                "offset": o,
            }
            for (dt, u, i, x, d, p, o, _) in EVENTS
        ],
        "expected": expected,
        "current": current,
        "watermarks": watermarks,
    }
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "..", "features", "tests", "golden", "features.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.normpath(path)}: {len(expected)} events")


if __name__ == "__main__":
    main()
