"""Pictures of a run, one call each (matplotlib, the ``notebook`` extra).

* :func:`plot_timeline`: what ran when, per source, how long; failures marked.
* :func:`plot_confidence`: the leading hypotheses of a space over cycles.
* :func:`plot_provenance`: an entry's derivation graph, and what it beat.

Each reads the blackboard (its working set and activation records), draws
on ``ax`` (a new figure when None) and returns the Axes, so it composes with
the rest of matplotlib. The data behind each is a public call too
(:func:`timeline_data`, :func:`confidence_data`, :func:`provenance_data`),
for people who would rather plot it their own way.
"""

from __future__ import annotations

from typing import Any

from blackboard import Blackboard, Entry, Status
from blackboard._display import short
from knowledge_sources._plotting import axes

from ._errors import ConfigurationError, blackboard_of

STATE_COLOURS = {"done": "#43a047", "failed": "#e53935", "obviated": "#bdbdbd", "pending": "#1e88e5"}


# ------------------------------------------------------------------ timeline
def timeline_data(bb: Blackboard) -> list[dict[str, Any]]:
    """Every activation of the run that ran: source, state, cycle, start (s from the first), seconds."""
    rows = blackboard_of(bb).sql(  # SELECT *: a format-1 file read as it is has no started column
        "SELECT * FROM activations WHERE cycle IS NOT NULL ORDER BY id"
    ).to_pylist()
    for r in rows:
        r.setdefault("started", None)
    starts = [r["started"] for r in rows if r["started"] is not None]
    origin = min(starts) if starts else 0.0
    for r in rows:
        r["start"] = None if r["started"] is None else r["started"] - origin
        r["seconds"] = r["seconds"] or 0.0
        r["error"] = (r["error"] or "").splitlines()[0] if r["error"] else None
    return rows


def plot_timeline(bb: Blackboard, *, ax: Any = None, by: str = "time") -> Any:
    """A lane per source; a bar per activation from its start, as long as it took.

    ``by="time"`` puts seconds since the run's first action on the x axis;
    ``by="cycle"`` puts cycles (one slot each), which reads better when
    actions take microseconds. Failed activations are red with a cross.
    """
    if by not in ("time", "cycle"):
        raise ConfigurationError("by", f"must be 'time' or 'cycle', not {by!r}")
    rows = timeline_data(bb)
    ax = axes(ax, "plot_timeline", (9, 0.5 + 0.45 * max(1, len({r['source'] for r in rows}))))
    sources = sorted({r["source"] for r in rows})
    lane = {name: i for i, name in enumerate(sources)}
    if by == "time" and any(r["start"] is None for r in rows):
        by = "cycle"  # written by an older version: no start times
    span = max((r["start"] + r["seconds"] for r in rows), default=0.0) if by == "time" else 0.0
    bars: dict[tuple[int, str], list[tuple[float, float]]] = {}
    crosses: tuple[list[float], list[float]] = ([], [])
    for r in rows:
        y = lane[r["source"]]
        if by == "time":  # an action of microseconds still shows: at least 1/500 of the run
            x, width = r["start"], max(r["seconds"], span / 500)
        else:
            x, width = r["cycle"] - 0.4, 0.8
        bars.setdefault((y, r["state"]), []).append((x, width))
        if r["state"] == "failed":
            crosses[0].append(x + width / 2)
            crosses[1].append(y)
    for (y, state), ranges in bars.items():  # one collection a lane and state: fast for big runs
        ax.broken_barh(ranges, (y - 0.35, 0.7), facecolors=STATE_COLOURS.get(state, "#757575"), edgecolors="none")
    if crosses[0]:
        ax.plot(crosses[0], crosses[1], marker="x", color="#b71c1c", markersize=7, linestyle="none")
    ax.set_yticks(range(len(sources)), sources)
    ax.set_ylim(-0.6, len(sources) - 0.4)
    ax.set_xlabel("seconds since the first action" if by == "time" else "cycle")
    failed = sum(r["state"] == "failed" for r in rows)
    ax.set_title(f"activations of run {bb.run_id}: {len(rows)} ran, {failed} failed")
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=STATE_COLOURS["done"], label="done"),
                       Patch(color=STATE_COLOURS["failed"], label="failed")],
              loc="upper right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return ax


# ---------------------------------------------------------------- confidence
def confidence_data(bb: Blackboard, space: str | None = None, *, top: int = 5) -> list[dict[str, Any]]:
    """The ``top`` hypotheses of ``space``: each revision chain's (cycle, confidence) points and fate.

    A hypothesis is an entry and the versions that revised it; hypotheses
    are ranked by their best confidence. ``space`` defaults to the last
    declared space (the highest level of abstraction).
    """
    bb = blackboard_of(bb)
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ConfigurationError("top", f"must be a positive int, not {top!r}")
    spaces = bb.space_names()
    if space is None:
        if not spaces:
            return []
        space = spaces[-1]
    view = bb.space(space)
    versions = view.all
    root: dict[int, int] = {}
    for e in sorted(versions, key=lambda e: e.id):
        root[e.id] = root.get(e.revises, e.id) if e.revises is not None else e.id
    chains: dict[int, list[Entry]] = {}
    for e in sorted(versions, key=lambda e: e.id):
        chains.setdefault(root[e.id], []).append(e)
    ends: dict[int, tuple[str, int]] = {}
    for event in bb.events():
        if event.entry in root and event.kind in ("superseded", "retracted", "reinstated", "rejected"):
            if event.kind == "superseded" and (event.details or {}).get("reason") == "revised":
                continue
            ends[event.entry] = (event.kind, event.cycle)
    out = []
    for first, chain in chains.items():
        last = chain[-1]
        fate, fate_cycle = ends.get(last.id, (str(last.status), last.cycle))
        out.append({
            "hypothesis": first, "space": space, "key": last.key, "value": last.value,
            "points": [(e.cycle, e.confidence) for e in chain], "status": str(last.status),
            "fate": fate if last.status != Status.ACTIVE else "active", "fate_cycle": fate_cycle,
            "best": max(e.confidence for e in chain),
        })
    out.sort(key=lambda h: (-h["best"], h["hypothesis"]))
    return out[:top]


def plot_confidence(bb: Blackboard, space: str | None = None, *, top: int = 5, ax: Any = None) -> Any:
    """Confidence of the leading hypotheses of ``space`` over cycles (step lines).

    Each line is one hypothesis through its revisions; a cross marks where
    one was superseded or retracted, a dot where it still stands.
    """
    data = confidence_data(bb, space, top=top)
    ax = axes(ax, "plot_confidence", (8, 4))
    last_cycle = max(bb.cycle, 1)
    for h in data:
        xs = [c for c, _ in h["points"]]
        ys = [v for _, v in h["points"]]
        end = h["fate_cycle"] if h["fate"] != "active" else last_cycle
        xs.append(max(end, xs[-1]))
        ys.append(ys[-1])
        key = f"[{h['key']}]" if h["key"] is not None else ""
        label = f"#{h['hypothesis']}{key} {short(h['value'], 28)}"
        (line,) = ax.step(xs, ys, where="post", label=label, linewidth=1.8)
        if h["fate"] == "active":
            ax.plot([xs[-1]], [ys[-1]], marker="o", color=line.get_color())
        else:
            ax.plot([xs[-1]], [ys[-1]], marker="x", color=line.get_color(), markersize=9)
    name = data[0]["space"] if data else (space or "")
    ax.set_title(f"leading hypotheses in {name!r} (× = superseded or retracted)")
    ax.set_xlabel("cycle")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("confidence")
    ax.set_ylim(-0.02, 1.05)
    if data:
        ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return ax


# ---------------------------------------------------------------- provenance
def provenance_data(bb: Blackboard, entry: int | Entry, *, depth: int = 4) -> dict[str, Any]:
    """An entry's derivation graph: nodes (entries) with their level, and edges.

    Level 0 is the entry; level n+1 holds what level n was derived from
    (``supports``) or triggered by (the activation's trigger entries). Edges
    are ``(from, to, kind)`` with kind ``"derived"``, ``"triggered"`` or
    ``"beat"`` (a competitor this entry won against, drawn at its level).
    """
    from ._explain import explain

    bb = blackboard_of(bb)
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise ConfigurationError("depth", f"must be a non-negative int, not {depth!r}")
    target = bb.get(entry)
    level = {target.id: 0}
    edges: list[tuple[int, int, str]] = []
    frontier = [target.id]
    beat: list[int] = []
    for n in range(depth):
        nxt: list[int] = []
        for eid in frontier:
            story = explain(bb, eid)
            parents = [(s.id, "derived") for s in story.supports]
            parents += [(t.id, "triggered") for t in story.triggers if t.id not in story.entry.supports]
            if eid == target.id:
                beat = [b["entry"] for b in story.beat]
            for pid, kind in parents:
                edges.append((pid, eid, kind))
                if pid not in level:
                    level[pid] = n + 1
                    nxt.append(pid)
        frontier = nxt
    for loser in beat:
        if loser not in level:
            level[loser] = 0
        edges.append((loser, target.id, "beat"))
    nodes = {eid: bb.get(eid) for eid in level}
    return {"entry": target.id, "nodes": nodes, "level": level, "edges": edges}


def plot_provenance(bb: Blackboard, entry: int | Entry, *, depth: int = 4, ax: Any = None) -> Any:
    """Draw where an entry came from (left) and what it beat (red, dashed)."""
    data = provenance_data(bb, entry, depth=depth)
    level: dict[int, int] = data["level"]
    nodes: dict[int, Entry] = data["nodes"]
    columns: dict[int, list[int]] = {}
    for eid in sorted(level, key=lambda e: (level[e], e)):
        columns.setdefault(level[eid], []).append(eid)
    tallest = max(len(c) for c in columns.values())
    ax = axes(ax, "plot_provenance", (3.0 + 2.6 * len(columns), 1.0 + 0.9 * tallest))
    beaten = [src for src, _, kind in data["edges"] if kind == "beat"]
    place: dict[int, tuple[float, float]] = {}
    for lvl, ids in columns.items():
        ids = [eid for eid in ids if eid not in beaten]
        for i, eid in enumerate(ids):
            place[eid] = (-float(lvl), (len(ids) - 1) / 2 - i)
    for i, eid in enumerate(beaten):  # what it beat: a column to its right
        place[eid] = (1.0, (len(beaten) - 1) / 2 - i)
    boxes: dict[int, Any] = {}
    for eid, (x, y) in place.items():
        e = nodes[eid]
        key = f"[{e.key}]" if e.key is not None else ""
        text = f"{eid} {e.space}{key}\n{short(e.value, 22)}\n{e.confidence:.2f} · {e.source}"
        face = "#fff3e0" if eid == data["entry"] else ("#ffebee" if eid in beaten else "#eceff1")
        edge = "#e65100" if eid == data["entry"] else ("#e53935" if eid in beaten else "#90a4ae")
        boxes[eid] = ax.text(x, y, text, ha="center", va="center", fontsize=7.5, family="monospace",
                             bbox={"boxstyle": "round,pad=0.35", "facecolor": face, "edgecolor": edge})
    for src, dst, kind in data["edges"]:
        style = {"derived": ("-", "#455a64"), "triggered": (":", "#1e88e5"), "beat": ("--", "#e53935")}[kind]
        if kind == "beat":  # drawn from the winner to the loser, on its right
            src, dst = dst, src
        ax.annotate("", xy=(0.0, 0.5), xycoords=boxes[dst], xytext=(1.0, 0.5), textcoords=boxes[src],
                    arrowprops={"arrowstyle": "-|>", "linestyle": style[0], "color": style[1],
                                "shrinkA": 2, "shrinkB": 2, "linewidth": 1.2})
    xs = [p[0] for p in place.values()]
    ys = [p[1] for p in place.values()]
    ax.set_xlim(min(xs) - 0.7, max(xs) + 0.7)
    ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
    ax.axis("off")
    ax.set_title(f"provenance of entry {data['entry']} (solid: derived from, dotted: triggered by, "
                 f"red dashed: beat)", fontsize=9)
    return ax
