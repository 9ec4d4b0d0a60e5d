"""Log tables, SUMMARY loggraph tables and plot curves of STRATEGY and TESTGEN (pure: text in,
text out; the action handler prints them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mosflm_py.output.loggraph import Graph, LoggraphTable
from mosflm_py.output.plot import Curve
from mosflm_py.strategy.overlaps import OscillationRow

__all__ = [
    "RotationRow",
    "SegmentRow",
    "axis_angle_lines",
    "best_rotation_lines",
    "best_rotation_table",
    "curve_lines",
    "curve_table",
    "curves_for_plot",
    "oscillation_lines",
    "oscillation_table",
    "overlap_lines",
    "overlap_table",
    "segment_lines",
]


@dataclass(frozen=True)
class RotationRow:
    """Best single segment for one total rotation."""

    rotation: float
    start: float
    completeness: float
    anomalous: float
    multiplicity: float


@dataclass(frozen=True)
class SegmentRow:
    """One segment of a strategy with the cumulative statistics after it."""

    start: float
    end: float
    completeness: float
    anomalous: float
    multiplicity: float
    label: str = ""


def axis_angle_lines(ub: np.ndarray, axis: np.ndarray, beam: np.ndarray) -> list[str]:
    """Angles (deg) between the real cell axes a, b, c and the lab X (beam), Y, Z (spindle)."""
    real = np.linalg.inv(ub)  # rows: a, b, c in the lab frame at phi = 0 (UB · h = r)
    lab = {
        "X (beam)": np.asarray(beam, float),
        "Y": np.cross(axis, beam),
        "Z (spindle)": np.asarray(axis, float),
    }
    lines = [
        " Angles (degrees) between the real cell axes and the laboratory axes at phi = 0:",
        "                  a       b       c",
    ]
    for name, v in lab.items():
        v = v / np.linalg.norm(v)
        ang = [np.degrees(np.arccos(np.clip(abs(r @ v) / np.linalg.norm(r), -1, 1))) for r in real]
        lines.append(f" {name:<13s}" + "".join(f"{a:8.1f}" for a in ang))
    return lines


def best_rotation_lines(rows: Sequence[RotationRow]) -> list[str]:
    """MOSFLM-style table: for each total rotation the best start and what it gives."""
    out = [
        " Optimum single segment for each total rotation:",
        "",
        "   Rotation    Start      End   Complete(%)   Anomalous(%)   Multiplicity",
    ]
    for r in rows:
        out.append(
            f"   {r.rotation:8.1f} {r.start:8.1f} {r.start + r.rotation:8.1f}"
            f"   {r.completeness:10.1f}   {r.anomalous:12.1f}   {r.multiplicity:12.2f}"
        )
    return out


def best_rotation_table(rows: Sequence[RotationRow]) -> LoggraphTable:
    """Loggraph of :func:`best_rotation_lines`."""
    return LoggraphTable(
        title="Strategy optimum start for each total rotation",
        graphs=[
            Graph("Completeness v total rotation", (1, 3, 4), "N"),
            Graph("Optimum start v total rotation", (1, 2), "A"),
            Graph("Multiplicity v total rotation", (1, 5), "N"),
        ],
        columns=["Rotation", "Start", "Complete", "Anomalous", "Multiplicity"],
        rows=[[r.rotation, r.start, r.completeness, r.anomalous, r.multiplicity] for r in rows],
        formats=["8.1f", "8.1f", "8.2f", "8.2f", "8.2f"],
    )


def curve_lines(
    rotations: np.ndarray,
    starts: Sequence[float],
    unique: np.ndarray,
    best: int | None = None,
    multiplicity: np.ndarray | None = None,
) -> list[str]:
    """Completeness (%) as the total rotation grows (rows) from each candidate start (columns),
    and the multiplicity from the marked start (last column) when ``multiplicity`` is given."""
    mark = 0 if best is None else best
    head = "".join(f"{s:7.0f}" + ("*" if k == best else " ") for k, s in enumerate(starts))
    out = [
        " Completeness (%) against total rotation from each starting phi"
        + (" (* optimum start)" if best is not None else "")
        + (f", multiplicity from phi {starts[mark]:g}" if multiplicity is not None else "")
        + ":",
        "",
        "   Rotation   Start:",
        "            " + head + ("   Mult" if multiplicity is not None else ""),
    ]
    for i, r in enumerate(rotations):
        row = f"   {r:8.1f} " + "".join(f"{unique[k][i]:7.1f} " for k in range(len(starts)))
        if multiplicity is not None:
            row += f"{multiplicity[mark][i]:7.2f}"
        out.append(row)
    return out


def curve_table(
    rotations: np.ndarray,
    starts: Sequence[float],
    unique: np.ndarray,
    anomalous: np.ndarray,
    mult: np.ndarray,
) -> LoggraphTable:
    """Loggraph: completeness against rotation, one column per start, anomalous and multiplicity
    for every start."""
    n = len(starts)
    cols = (
        ["Rotation"]
        + [f"C_{s:g}" for s in starts]
        + [f"A_{s:g}" for s in starts]
        + [f"M_{s:g}" for s in starts]
    )
    rows = [
        [float(r)]
        + [float(unique[k][i]) for k in range(n)]
        + [float(anomalous[k][i]) for k in range(n)]
        + [float(mult[k][i]) for k in range(n)]
        for i, r in enumerate(rotations)
    ]
    return LoggraphTable(
        title="Strategy completeness against total rotation for each start",
        graphs=[
            Graph("Completeness v rotation", tuple([1] + list(range(2, n + 2))), "N"),
            Graph(
                "Anomalous completeness v rotation", tuple([1] + list(range(n + 2, 2 * n + 2))), "N"
            ),
            Graph("Multiplicity v rotation", tuple([1] + list(range(2 * n + 2, 3 * n + 2))), "N"),
        ],
        columns=cols,
        rows=rows,
        formats=["8.1f"] + ["8.2f"] * (3 * n),
    )


def curves_for_plot(
    rotations: np.ndarray,
    starts: Sequence[float],
    unique: np.ndarray,
    anomalous: np.ndarray,
    dashed_all: bool,
    best: int | None,
) -> list[Curve]:
    """Curves for the completeness PNG: solid per start, anomalous dashed (every start with
    ANOMALOUS, else the optimum start's only)."""
    curves = []
    for k, s in enumerate(starts):
        tag = " (optimum)" if k == best else ""
        curves.append(Curve(rotations, unique[k], f"start {s:g}{tag}", colour=k))
    for k, s in enumerate(starts):
        if dashed_all or k == best:
            curves.append(
                Curve(
                    rotations,
                    anomalous[k],
                    f"anomalous, start {s:g}" if (k == best or len(starts) == 1) else "",
                    colour=k,
                    dashed=True,
                )
            )
    return curves


def segment_lines(title: str, rows: Sequence[SegmentRow]) -> list[str]:
    """Segments with cumulative completeness, anomalous completeness and multiplicity."""
    out = [
        f" {title}",
        "",
        "   Segment    Start      End   Complete(%)   Anomalous(%)   Multiplicity",
    ]
    for k, r in enumerate(rows, 1):
        out.append(
            f"   {k:7d} {r.start:8.1f} {r.end:8.1f}   {r.completeness:10.1f}"
            f"   {r.anomalous:12.1f}   {r.multiplicity:12.2f}"
            + (f"   {r.label}" if r.label else "")
        )
    return out


def oscillation_lines(rows: Sequence[OscillationRow], max_percent: float) -> list[str]:
    """TESTGEN table: largest oscillation angle per start phi."""
    out = [
        f" Maximum oscillation angle giving at most {max_percent:g}% spatially overlapped "
        "reflections:",
        "",
        "      Phi   Max osc   Reflections   Overlapped   Overlapped(%)",
    ]
    for r in rows:
        osc = f"{r.oscillation:9.2f}" if r.oscillation is not None else "     none"
        out.append(
            f" {r.phi:8.1f} {osc}   {r.n_reflections:11d}   {r.n_overlapped:10d}"
            f"   {r.percent:13.1f}"
        )
    return out


def oscillation_table(rows: Sequence[OscillationRow]) -> LoggraphTable:
    """Loggraph of the TESTGEN maximum oscillation table."""
    return LoggraphTable(
        title="TESTGEN maximum oscillation angle against phi",
        graphs=[
            Graph("Maximum oscillation v phi", (1, 2), "N"),
            Graph("Overlapped percentage v phi", (1, 5), "N"),
        ],
        columns=["Phi", "MaxOsc", "Nref", "Noverlap", "Percent"],
        rows=[[r.phi, r.oscillation, r.n_reflections, r.n_overlapped, r.percent] for r in rows],
        formats=["8.1f", "8.2f", "d", "d", "8.2f"],
    )


def overlap_lines(
    phis: Sequence[float], angles: Sequence[float], counts: Sequence[Sequence[tuple[int, int]]]
) -> list[str]:
    """TESTGEN ANGLE table: percentage overlapped at each given oscillation angle."""
    out = [
        " Spatially overlapped reflections (%) for the given oscillation angles:",
        "",
        "      Phi " + "".join(f"   {a:6.2f} deg" for a in angles),
    ]
    for phi, row in zip(phis, counts):
        out.append(
            f" {phi:8.1f} " + "".join(f"   {100.0 * o / n if n else 0.0:10.1f}" for n, o in row)
        )
    return out


def overlap_table(
    phis: Sequence[float], angles: Sequence[float], counts: Sequence[Sequence[tuple[int, int]]]
) -> LoggraphTable:
    """Loggraph of :func:`overlap_lines`."""
    cols = ["Phi"] + [f"Pct_{a:g}" for a in angles]
    return LoggraphTable(
        title="TESTGEN overlapped percentage against phi",
        graphs=[Graph("Overlapped percentage v phi", tuple(range(1, len(cols) + 1)), "N")],
        columns=cols,
        rows=[
            [float(p)] + [100.0 * o / n if n else 0.0 for n, o in row]
            for p, row in zip(phis, counts)
        ],
        formats=["8.1f"] + ["8.2f"] * len(angles),
    )
