"""The tracking blackboard: its spaces, its knowledge sources, and loading a scenario.

Levels, bottom up (every space declares its fields)::

    scan        key "0007": {t, readings, expected}; one per time step, every
                sensor's readings at that step as [key, id, sensor, x, y,
                sigma] (the index sources read neighbours from with one
                point read); posted by load
    reading     key "0007.1.004" (step.sensor.index): {t, sensor, x, y,
                sigma}; confidence: the sensor's detection probability;
                posted by load
    tracklet    key: its anchor, the smallest key among its readings at its
                middle step t: {t, x, y, vx, vy, var, readings, hits, sensors,
                expected, chi2}, a constant-velocity fit to the readings of
                every sensor at t-2..t+2. NoisyOr: each reading of the fit at
                t claims it with its sensor's confidence, so agreeing sensors
                combine, and of two fits claiming one anchor the one more
                sensors agree on wins
    link        key: the predecessor tracklet: {track, src, dst, t, gap,
                cost}, "the track at src continues into dst" (a Kalman gate).
                HighestConfidence: two tracklets claiming to continue one
                track compete here; the better fit wins
    track       key: the tracklet: {track, t, x, y, vx, vy, cov, length,
                start, prev, cost, hits, expected}, a track's Kalman-filtered
                state there. HighestConfidence: two tracks claiming one
                tracklet compete here; the longer, better fitting one wins
    target      key: the track id: {track, start, last, length}, a confirmed
                track: an identified target

Sources (each works from its trigger and point reads by key)::

    fuse_readings       reading -> tracklet: the best constant-velocity fits
                        through the reading and the readings of every sensor
                        up to two steps either side (sensor fusion)
    prune_false_alarms  a tracklet holding under PRUNE of the readings its
                        sensors should have given is retracted (clutter)
    withdraw_tracks     a tracklet that lost or was retracted takes the track
                        entries built on it along
    associate           tracklet -> link: for each track ending near it in
                        the last MAX_GAP steps and within the Kalman gate,
                        claim a link; with none, start a track
    extend_track        link -> track: the track's state at the new tracklet
                        (a Kalman update)
    split_track         a link that lost or was withdrawn: its tracklet
                        leaves that track and is associated again
    withdraw_links      a retracted track entry takes its links along
    confirm_target      track -> target: CONFIRM tracklets or more, holding
                        SUPPORT of the readings the sensors should have given

:func:`time_order` is the default rating: a sweep over time, each step's
readings fused before its tracklets are associated, so an association sees
the tracks up to the step before. Where the same readings support different
tracks, the claims meet on one key and conflict resolution decides.
"""

from __future__ import annotations

import math
from typing import Any

from blackboard import Blackboard, Entry, Space, Status

from .. import KnowledgeSource, ReadView, knowledge_source, post, retract, revise
from .._contributions import Contribution
from ._scenario import Scenario, TrackingError

MAX_SPEED = 6.0       # the fastest a target is assumed to move, per step
GATE2 = 11.8          # chi-square gate of a reading, 2 degrees of freedom (99.7 %)
LINK_GATE = 18.5      # chi-square gate of a link (position and velocity, 4 dof, 99.9 %)
MAX_GAP = 4           # a track may skip this many steps minus one
CONFIRM = 5           # tracklets a track needs to be a target
SUPPORT = 0.75        # ... and this share of the readings its sensors should have given
PROCESS = 0.01        # velocity variance a target gains per step (process noise)
OVERLAP = 4.0         # consecutive tracklets share readings: their variance is inflated
START_CONFIDENCE = 0.4
ALTERNATIVES = 2      # fits a reading may claim (the best, and one of another velocity)
PRUNE = 0.4           # a tracklet with fewer than this share of the expected readings is clutter

_RETRACTED = Status.RETRACTED.value


def spaces() -> list[Space]:
    """The six spaces of a tracking blackboard, with their fields declared."""
    return [
        Space("scan", {"t": int, "readings": list, "expected": float},
              "every sensor's readings at one time step (key: the step)"),
        Space("reading", {"t": int, "sensor": int, "x": float, "y": float, "sigma": float},
              "one sensor reading (key: step.sensor.index)"),
        Space("tracklet", {"t": int, "x": float, "y": float, "vx": float, "vy": float, "var": list,
                           "readings": list, "hits": int, "sensors": int, "expected": float, "chi2": float},
              "a constant-velocity fit to every sensor's readings at t-2..t+2 (key: its anchor reading)"),
        Space("link", {"track": str, "src": str, "dst": str, "t": int, "gap": int, "cost": float},
              "a track continuing from one tracklet into another (key: the predecessor)"),
        Space("track", {"track": str, "t": int, "x": float, "y": float, "vx": float, "vy": float,
                        "cov": list, "length": int, "start": int, "prev": str, "cost": float,
                        "hits": int, "expected": float},
              "a track's filtered state at one tracklet (key: the tracklet)"),
        Space("target", {"track": str, "start": int, "last": int, "length": int},
              "a confirmed track (key: the track id)"),
    ]


def conflict_strategies() -> dict[str, Any]:
    """The conflict strategy of each space: NoisyOr for tracklets, else HighestConfidence."""
    from controller import (  # here: controller imports this package
        HighestConfidence,
        NoisyOr,
    )

    return {"tracklet": NoisyOr(), "*": HighestConfidence()}


# --------------------------------------------------------------- geometry
def _scan(view: ReadView, t: int) -> list[Any] | None:
    """The readings of step t as [key, id, sensor, x, y, sigma] (read-only), None past the ends."""
    found = view.find("scan", f"{t:04d}")
    return found[0].value["readings"] if found else None


def _fit(points: list[tuple[Any, ...]]) -> tuple[float, ...] | None:
    """Weighted least squares x(d) = x0 + v d over (d, key, id, sensor, x, y, sigma)."""
    s0 = s1 = s2 = sx = sy = sxd = syd = 0.0
    for d, _, _, _, x, y, sigma in points:
        w = 1.0 / (sigma * sigma)
        s0 += w
        s1 += w * d
        s2 += w * d * d
        sx += w * x
        sy += w * y
        sxd += w * x * d
        syd += w * y * d
    det = s0 * s2 - s1 * s1
    if det <= 1e-12:
        return None
    x0 = (s2 * sx - s1 * sxd) / det
    y0 = (s2 * sy - s1 * syd) / det
    vx = (s0 * sxd - s1 * sx) / det
    vy = (s0 * syd - s1 * sy) / det
    chi2 = 0.0
    for d, _, _, _, x, y, sigma in points:
        chi2 += ((x - x0 - vx * d) ** 2 + (y - y0 - vy * d) ** 2) / (sigma * sigma)
    return x0, y0, vx, vy, s2 / det, -s1 / det, s0 / det, chi2


WINDOW = (-2, -1, 0, 1, 2)  # the steps a tracklet spans, around its middle step


def _gather(line: tuple[float, ...], frames: dict[int, list[Any]],
            me: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Per step and sensor, the reading nearest the line within its gate (the trigger at d=0)."""
    x0, y0, vx, vy, var_p, cov, var_v = line[:7]
    chosen: list[tuple[Any, ...]] = [(0, *me)]
    for d, frame in frames.items():
        px, py = x0 + vx * d, y0 + vy * d
        var = var_p + 2 * d * cov + d * d * var_v
        best: dict[int, tuple[float, tuple[Any, ...]]] = {}
        for reading in frame:
            key, _, sensor, x, y, sigma = reading
            if d == 0 and sensor == me[2]:
                continue  # the trigger stands for its sensor at its step
            d2 = (x - px) ** 2 + (y - py) ** 2
            if d2 <= GATE2 * (sigma * sigma + var):
                score = d2 / (sigma * sigma + var)
                held = best.get(sensor)
                if held is None or (score, key) < (held[0], held[1][0]):
                    best[sensor] = (score, reading)
        chosen.extend((d, *reading) for _, reading in best.values())
    chosen.sort(key=lambda p: p[1])
    return chosen


def _seeds(frames: dict[int, list[Any]], me: tuple[Any, ...], span: int) -> list[tuple[tuple[Any, ...], ...]]:
    """Pairs of readings ``span`` steps apart, one before and one after the trigger, in line
    with it at a plausible speed."""
    _, _, _, mx, my, ms = me
    out = []
    for da in (-1, -2):
        db = span + da
        if db not in (1, 2):
            continue
        for a in frames.get(da, ()):
            reach = -da * MAX_SPEED + 3.0 * math.sqrt(a[5] ** 2 + ms * ms)
            if (mx - a[3]) ** 2 + (my - a[4]) ** 2 > reach * reach:
                continue
            f = db / -da
            bx, by = mx + (mx - a[3]) * f, my + (my - a[4]) * f
            spread = (f * a[5]) ** 2 + ((1 + f) * ms) ** 2
            for b in frames.get(db, ()):
                if (b[3] - bx) ** 2 + (b[4] - by) ** 2 <= GATE2 * (spread + b[5] ** 2):
                    out.append(((da, *a), (0, *me), (db, *b)))
    return out


def fuse_readings(entry: Entry, view: ReadView) -> list[Contribution] | None:
    """Fit tracklets through the reading and every sensor's readings up to two steps either side.

    Seeds are pairs of readings before and after in line with it; each seed's
    line gathers, per step and sensor, the nearest reading in its gate, and
    is fitted again. The best fit (most readings, then least chi-square) is
    claimed, and a second one if it moves clearly otherwise (two targets
    crossing) and holds enough readings not to be clutter.
    """
    r = entry.value
    t = r["t"]
    mx, my, ms = r["x"], r["y"], r["sigma"]
    frames: dict[int, list[Any]] = {}
    steps = 0
    for d in WINDOW:
        frame = _scan(view, t + d)
        if frame is None:
            continue
        steps += 1
        # only what a target seen here could have produced (the rest cannot be in its fit)
        reach = abs(d) * MAX_SPEED
        frames[d] = [q for q in frame
                     if (q[3] - mx) ** 2 + (q[4] - my) ** 2 <= (reach + 4.0 * math.sqrt(q[5] ** 2 + ms * ms)) ** 2]
    if not (-1 in frames and 1 in frames):
        return None
    me = (entry.key, entry.id, r["sensor"], mx, my, ms)
    candidates: list[tuple[Any, ...]] = []
    covered: list[set[str]] = []
    for span in (2, 3, 4):  # seeds from the nearest steps first; further only if those fail
        for seed in _seeds(frames, me, span):
            if any(seed[0][1] in keys and seed[2][1] in keys for keys in covered):
                continue  # its readings are in a fit already made
            points = list(seed)
            line = None
            for _ in range(2):
                line = _fit(points)
                if line is None:
                    break
                gathered = _gather(line, frames, me)
                if gathered == points:
                    break
                points = gathered
            if line is None or len({p[0] for p in points}) < 3:
                continue
            line = _fit(points)
            if line is None:
                continue
            keys = {p[1] for p in points}
            covered.append(keys)
            if math.hypot(line[2], line[3]) > MAX_SPEED + 3.0 * math.sqrt(line[6]):
                continue
            candidates.append(((len(points), -line[7], sorted(keys)), points, line))
        if candidates:
            break
    if not candidates:
        return None
    candidates.sort(key=lambda c: c[0], reverse=True)
    expected = round(steps * view.find("scan", f"{t:04d}")[0].value["expected"], 4)
    chosen = [candidates[0]]
    for candidate in candidates[1:ALTERNATIVES]:
        # a second reading of the reading: a target moving otherwise, plausibly detected
        line = candidate[2]
        if len(candidate[1]) >= PRUNE * expected and all(
            (line[2] - c[2][2]) ** 2 + (line[3] - c[2][3]) ** 2 > GATE2 * (line[6] + c[2][6]) for c in chosen
        ):
            chosen.append(candidate)
    out = []
    for _, points, line in chosen:
        x0, y0, vx, vy, var_p, cov, var_v, chi2 = line
        value = {
            "t": t, "x": round(x0, 4), "y": round(y0, 4), "vx": round(vx, 4), "vy": round(vy, 4),
            "var": [round(var_p, 6), round(cov, 6), round(var_v, 6)],
            "readings": [p[1] for p in points], "hits": len(points),
            "sensors": len({p[3] for p in points}), "expected": expected, "chi2": round(chi2, 4),
        }
        anchor = min(p[1] for p in points if p[0] == 0)
        out.append(post("tracklet", value, key=anchor, confidence=min(entry.confidence, 0.999),
                        supports=[p[2] for p in points]))
    return out


def prune_false_alarms(entry: Entry) -> Contribution:
    """A tracklet holding under PRUNE of the readings its sensors should give is clutter."""
    v = entry.value
    return retract(entry, f"{v['hits']} readings where about {v['expected']:.1f} were expected: presumed false alarm")


def withdraw_tracks(entry: Entry, view: ReadView) -> list[Contribution] | None:
    """Track entries built on a tracklet that lost (or was retracted) go with it."""
    out: list[Contribution] = []
    for e in view.find("track", entry.key, status=None):
        if e.status != _RETRACTED and entry.id in e.supports:
            out.append(retract(e, f"its tracklet {entry.id} was {entry.status}"))
    return out or None


# ------------------------------------------------------------- filtering
def _predict(cov: list[float], gap: int) -> tuple[float, float, float]:
    c11, c12, c22 = cov
    g = float(gap)
    return (c11 + 2 * g * c12 + g * g * c22 + PROCESS * g ** 3 / 3,
            c12 + g * c22 + PROCESS * g * g / 2,
            c22 + PROCESS * g)


def _update(track: dict[str, Any], tracklet: dict[str, Any], gap: int) -> tuple[dict[str, Any], float]:
    """Kalman step of a track to a tracklet ``gap`` steps later: (new state, innovation chi-square)."""
    p11, p12, p22 = _predict(track["cov"], gap)
    r11, r12, r22 = (OVERLAP * v for v in tracklet["var"])
    s11, s12, s22 = p11 + r11, p12 + r12, p22 + r22
    det = s11 * s22 - s12 * s12
    k11, k12 = (p11 * s22 - p12 * s12) / det, (p12 * s11 - p11 * s12) / det
    k21, k22 = (p12 * s22 - p22 * s12) / det, (p22 * s11 - p12 * s12) / det
    state: dict[str, Any] = {}
    cost = 0.0
    for axis in ("x", "y"):
        v = track["v" + axis]
        pp, pv = track[axis] + gap * v, v
        ep, ev = tracklet[axis] - pp, tracklet["v" + axis] - pv
        cost += (s22 * ep * ep - 2 * s12 * ep * ev + s11 * ev * ev) / det
        state[axis] = round(pp + k11 * ep + k12 * ev, 4)
        state["v" + axis] = round(pv + k21 * ep + k22 * ev, 4)
    n11 = (1 - k11) * p11 - k12 * p12
    n12 = (1 - k11) * p12 - k12 * p22
    n22 = -k21 * p12 + (1 - k22) * p22
    state["cov"] = [round(n11, 6), round(n12, 6), round(n22, 6)]
    return state, cost


def _start(tracklet: Entry) -> dict[str, Any]:
    q = tracklet.value
    return {"track": f"T{tracklet.key}", "t": q["t"], "x": q["x"], "y": q["y"], "vx": q["vx"], "vy": q["vy"],
            "cov": [round(OVERLAP * v, 6) for v in q["var"]], "length": 1, "start": q["t"], "prev": None,
            "cost": 0.0, "hits": q["hits"], "expected": q["expected"]}


def _track_confidence(length: int, cost: float) -> float:
    return round((1.0 - 0.6 ** length) * math.exp(-cost / 16.0), 6)


def associate(entry: Entry, view: ReadView) -> list[Contribution] | Contribution | None:
    """Claim a link from every track ending near this tracklet (Kalman gate); none: start a track."""
    for claim in view.find("tracklet", entry.key):
        if claim.id < entry.id and claim.value == entry.value:
            return None  # an agreeing claim of another sensor's reading speaks for this tracklet
    return _associate(entry, view)


def _linked(view: ReadView, src: str, track: str, dst: str) -> bool:
    """Whether a link of ``track`` from ``src`` to ``dst`` was claimed already (and not withdrawn)."""
    return any(link.status != _RETRACTED and link.value["track"] == track and link.value["dst"] == dst
               for link in view.find("link", src, status=None))


def _associate(tracklet: Entry, view: ReadView) -> list[Contribution] | Contribution:
    """Links from the tracks that end near ``tracklet`` in the last MAX_GAP steps, or a new track.

    For each track, only its newest entry near the tracklet's back-projection
    counts (an older one would only contest its own continuation).
    """
    q = tracklet.value
    t = q["t"]
    var_p, _, var_v = q["var"]
    links: list[Contribution] = []
    seen: set[str] = set()
    for gap in range(1, MAX_GAP + 1):
        frame = _scan(view, t - gap)
        if frame is None:
            break
        bx, by = q["x"] - gap * q["vx"], q["y"] - gap * q["vy"]
        found: set[str] = set()
        slots: set[str] = set()
        for reading in frame:
            key, sigma = reading[0], reading[5]
            radius2 = GATE2 * (sigma * sigma + OVERLAP * (var_p + gap * gap * var_v)) + (gap * 1.5) ** 2
            if (reading[3] - bx) ** 2 + (reading[4] - by) ** 2 > radius2 or key in slots:
                continue
            slots.add(key)
            if not view.find("tracklet", key):
                continue
            for held in view.find("track", key):
                track = held.value["track"]
                if track in seen:
                    continue
                found.add(track)
                if _linked(view, key, track, tracklet.key):
                    continue
                _, cost = _update(held.value, q, gap)
                if cost <= LINK_GATE:
                    confidence = round(math.exp(-cost / 8.0) * 0.8 ** (gap - 1), 6)
                    links.append(post(
                        "link", {"track": track, "src": key, "dst": tracklet.key, "t": t, "gap": gap,
                                 "cost": round(cost, 4)},
                        key=key, confidence=max(confidence, 1e-6), supports=[held.id, tracklet.id],
                    ))
        seen |= found
    if links:
        return links
    return post("track", _start(tracklet), key=tracklet.key, confidence=START_CONFIDENCE, supports=[tracklet.id])


def extend_track(entry: Entry, view: ReadView) -> Contribution | None:
    """The track's filtered state at the tracklet its winning link leads to."""
    link = entry.value
    held = [e for e in view.find("track", link["src"]) if e.value["track"] == link["track"]]
    tracklets = view.find("tracklet", link["dst"])
    if not held or not tracklets:
        return None
    previous, tracklet = held[-1], tracklets[0]
    for e in view.find("track", link["dst"], status=None):
        if e.status != _RETRACTED and e.value["track"] == link["track"] and e.value["prev"] == link["src"]:
            return None  # extended already
    state, cost = _update(previous.value, tracklet.value, link["gap"])
    length = previous.value["length"] + 1
    value = {"track": link["track"], "t": tracklet.value["t"], **state, "length": length,
             "start": previous.value["start"], "prev": link["src"], "cost": round(cost, 4),
             "hits": previous.value["hits"] + tracklet.value["hits"],
             "expected": round(previous.value["expected"] + tracklet.value["expected"], 4)}
    return post("track", value, key=link["dst"], confidence=_track_confidence(length, cost),
                supports=[entry.id, previous.id, tracklet.id])


def split_track(entry: Entry, view: ReadView) -> list[Contribution] | Contribution | None:
    """A link that lost (or was withdrawn): its tracklet leaves that track and, if no other
    track holds it, is associated again (other tracks, or a track of its own)."""
    link = entry.value
    out: list[Contribution] = []
    others = False
    for e in view.find("track", link["dst"], status=None):
        if e.status == _RETRACTED:
            continue
        if e.value["track"] == link["track"] and e.value["prev"] == link["src"]:
            out.append(retract(e, f"its link was {entry.status}"))
        else:
            others = True
    tracklets = view.find("tracklet", link["dst"])
    if not others and tracklets:
        again = _associate(tracklets[0], view)
        out.extend(again if isinstance(again, list) else [again])
    return out or None


def withdraw_links(entry: Entry, view: ReadView) -> list[Contribution] | None:
    """The links out of a retracted track entry go with it."""
    track = entry.value["track"]
    out: list[Contribution] = [
        retract(link, f"the track entry {entry.id} it continued was retracted")
        for link in view.find("link", entry.key, status=None)
        if link.status != _RETRACTED and link.value["track"] == track
    ]
    return out or None


def confirm_target(entry: Entry, view: ReadView) -> Contribution | None:
    """A track of CONFIRM tracklets or more, with SUPPORT of its expected readings, is a
    target; its later entries extend it."""
    v = entry.value
    value = {"track": v["track"], "start": v["start"], "last": v["t"], "length": v["length"]}
    held = view.find("target", v["track"])
    if not held:
        return post("target", value, key=v["track"], confidence=entry.confidence)
    current = held[-1]
    if current.value["last"] >= v["t"]:
        return None
    return revise(current, value=value, confidence=max(current.confidence, entry.confidence))


# name -> (action, options); the stage orders work within a time step (see time_order)
_SOURCES: dict[str, tuple[Any, dict[str, Any], float]] = {
    "fuse_readings": (fuse_readings, {
        "watches": "reading", "when": "t >= 1", "writes": "tracklet"}, -0.6),
    "prune_false_alarms": (prune_false_alarms, {
        "watches": "tracklet", "when": f"hits < {PRUNE} * expected", "writes": "tracklet",
        "events": ("posted", "reinstated")}, -0.5),
    "withdraw_tracks": (withdraw_tracks, {
        "watches": "tracklet", "writes": "track", "events": ("superseded", "retracted")}, -0.4),
    "associate": (associate, {
        "watches": "tracklet", "writes": ("link", "track"), "events": ("posted", "reinstated")}, 0.0),
    "extend_track": (extend_track, {
        "watches": "link", "writes": "track", "events": ("posted", "reinstated")}, 0.1),
    "split_track": (split_track, {
        "watches": "link", "writes": ("link", "track"), "events": ("superseded", "retracted")}, 0.2),
    "withdraw_links": (withdraw_links, {
        "watches": "track", "writes": "link", "events": ("retracted",)}, 0.25),
    "confirm_target": (confirm_target, {
        "watches": "track", "when": f"length >= {CONFIRM} and hits >= {SUPPORT} * expected", "writes": "target",
        "events": ("posted", "reinstated")}, 0.3),
}
_STAGE = {name: stage for name, (_, _, stage) in _SOURCES.items()}


def sources() -> list[KnowledgeSource]:
    """Fresh knowledge sources of the tracker (new objects each call)."""
    return [knowledge_source(fn, name=name, **options) for name, (fn, options, _) in _SOURCES.items()]


def time_order(source: KnowledgeSource, triggers: tuple[Entry, ...]) -> float:
    """Rating: earlier time steps first, and within a step, fuse, prune, associate, extend, confirm."""
    value = triggers[0].value
    t = value.get("t") if type(value) is dict else None
    if type(t) is not int:
        return source.priority
    return -(t + _STAGE.get(source.name, 0.5)) + source.priority


# ------------------------------------------------------------------ load
def reading_key(t: int, sensor: int, index: int) -> str:
    return f"{t:04d}.{sensor}.{index:03d}"


def load(bb: Blackboard, scenario: Scenario) -> list[Entry]:
    """Post the scenario's readings and one scan per step on ``bb``; returns the readings.

    The tracking spaces are declared on ``bb`` if they are not yet. Raises
    :class:`TrackingError` when ``bb`` already holds scans.
    """
    if bb.find("scan", f"{0:04d}", status=None):
        raise TrackingError("this blackboard already holds a scenario (scan 0000 exists)")
    declared = bb.spaces
    missing = [s for s in spaces() if s.name not in declared]
    if missing:
        bb.declare(*missing)
    ops = []
    counts: dict[tuple[int, int], int] = {}
    for r in scenario.readings:
        index = counts.get((r.t, r.sensor), 0)
        counts[(r.t, r.sensor)] = index + 1
        sensor = scenario.sensors[r.sensor]
        value = {"t": r.t, "sensor": r.sensor, "x": float(r.x), "y": float(r.y), "sigma": float(sensor.sigma)}
        ops.append(("post", "reading", value, reading_key(r.t, r.sensor, index), float(sensor.p_detect), (), 0))
    readings = bb.transact(ops, source="sensors") if ops else []
    frames: dict[int, list[Entry]] = {t: [] for t in range(scenario.steps)}
    for e in readings:
        frames[e.value["t"]].append(e)
    expected = round(sum(s.p_detect for s in scenario.sensors), 6)
    scans = [
        ("post", "scan", {"t": t, "readings": [[e.key, e.id, e.value["sensor"], e.value["x"], e.value["y"],
                                                 e.value["sigma"]] for e in frame],
                          "expected": expected},
         f"{t:04d}", 1.0, tuple(e.id for e in frame), 0)
        for t, frame in frames.items()
    ]
    bb.transact(scans, source="sensors")
    return readings
