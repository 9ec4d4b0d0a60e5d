"""Laue-group choice from the intensities, as POINTLESS does (QuickSymm).

Method (Evans 2006, Acta Cryst. D62, 72-82, section 3; Evans 2011, Acta Cryst. D67, 282-292):

1. The lattice's metric symmetry (the holohedry of the cell within ``max_obliq`` degrees) is
   found with gemmi (``find_lattice_symmetry``); its rotations act on Miller indices as
   h' = h R.
2. Intensities are normalised (E² = I/<I> in shells of resolution, and for the drift along the
   rotation) and averaged over Friedel mates and repeated measurements in P-1 (every Laue group
   contains the inversion).
3. Every symmetry element (a rotation axis with its order: the cyclic group of a rotation) is
   scored by the correlation coefficient of the E² of reflection pairs it relates. The
   probability that the element is present follows from the CC under two hypotheses: present
   (CC distributed about the CC expected for equivalent reflections, estimated from repeated
   measurements of the same reflection) and absent (CC about 0), each a Lorentzian truncated to
   [-1, 1] whose width grows as the number of pairs falls (POINTLESS's model, 2006 eq. 4-6).
4. Every subgroup of the lattice group is a candidate Laue group; its likelihood is the product
   of p(present) over its elements and 1 - p(present) over the others; the likelihoods are
   normalised to probabilities, and the confidence of the best group is
   sqrt(P1 (P1 - P2)) (Evans 2011, section 2.3).

gemmi provides the lattice symmetry, group operations and space-group lookup; the scoring is
written here because no library computes it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import gemmi
import numpy as np

from mosflm_py.scaling.observations import Observations, QuickScaleError, hkl_keys

__all__ = ["LaueCandidate", "LaueResult", "SymmetryElement", "score_laue_groups"]

MIN_SHELL_ISIG = 1.0
"""Resolution shells are scored only out to the first whose mean I/σ(I) is below this."""

MIN_PAIRS = 5
"""Fewest pairs of related reflections that score a symmetry element (else likelihood 0.5)."""

SIGMA_FLOOR = 0.1
"""Smallest width of the CC distributions: CCs scatter by this much from causes other than
counting statistics (unscaled data, partiality, the normalisation), as POINTLESS allows."""


@dataclass
class SymmetryElement:
    """A rotation axis of the lattice with its order, and its score."""

    order: int
    ops: list[np.ndarray]
    axis: str
    cc: float = float("nan")
    n_pairs: int = 0
    z_cc: float = float("nan")
    likelihood: float = 0.5

    @property
    def label(self) -> str:
        return f"{self.order}-fold {self.axis}"


@dataclass
class LaueCandidate:
    """A subgroup of the lattice symmetry: a candidate Laue group."""

    laue: str
    space_group: gemmi.SpaceGroup | None
    ops: list[np.ndarray]
    elements: list[int]
    likelihood: float = 0.0
    probability: float = 0.0
    cc_in: float = float("nan")
    cc_out: float = float("nan")

    @property
    def name(self) -> str:
        return self.space_group.hm if self.space_group is not None else f"({self.laue})"


@dataclass
class LaueResult:
    """Scores of all symmetry elements and candidate groups; the best group first."""

    lattice: str
    elements: list[SymmetryElement]
    candidates: list[LaueCandidate]
    cc_identity: float
    n_identity: int
    expected_cc: float
    n_reflections: int
    max_obliq: float
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> LaueCandidate:
        return self.candidates[0]

    @property
    def unscored(self) -> list[int]:
        """Indices of the symmetry elements that could not be scored (fewer than MIN_PAIRS
        pairs of related reflections, or no finite CC): their likelihood is 0.5, no evidence."""
        return [i for i, e in enumerate(self.elements)
                if e.n_pairs < MIN_PAIRS or not np.isfinite(e.cc)]

    @property
    def undetermined(self) -> bool:
        """The data cannot decide the Laue group.

        Either no symmetry element of the lattice could be scored, or the best group ties with
        the next: they differ only in elements without evidence, so choosing either (the tie
        would go to the lower symmetry) would be a guess, not a result.
        """
        if not self.elements:
            return False
        unscored = self.unscored
        if len(unscored) == len(self.elements):
            return True
        if unscored and len(self.candidates) > 1:
            p1, p2 = self.candidates[0].probability, self.candidates[1].probability
            return p1 - p2 <= 1e-6 * max(p1, 1e-300)
        return False

    @property
    def confidence(self) -> float:
        p1 = self.candidates[0].probability
        p2 = self.candidates[1].probability if len(self.candidates) > 1 else 0.0
        return math.sqrt(max(p1 * (p1 - p2), 0.0))


def _rot(op: gemmi.Op) -> np.ndarray:
    return np.array(op.rot, dtype=np.int64) // gemmi.Op.DEN


def _key(m: np.ndarray) -> tuple:
    return tuple(int(v) for v in m.ravel())


def _order(m: np.ndarray) -> int:
    e = np.eye(3, dtype=np.int64)
    p = m.copy()
    for n in range(1, 7):
        if np.array_equal(p, e):
            return n
        p = p @ m
    raise QuickScaleError("lattice operator of order > 6")


def _closure(gens: list[np.ndarray]) -> dict[tuple, np.ndarray]:
    e = np.eye(3, dtype=np.int64)
    group = {_key(e): e}
    frontier = [e]
    while frontier:
        new = []
        for a in frontier:
            for g in gens:
                p = a @ g
                k = _key(p)
                if k not in group:
                    group[k] = p
                    new.append(p)
        frontier = new
    return group


def _axis_label(m: np.ndarray, cell: gemmi.UnitCell) -> str:
    """Direction of the rotation axis in real-space lattice coordinates, e.g. ``[0 0 1]``."""
    # axis: eigenvector of the real-space rotation R (x' = R x) with eigenvalue 1
    w, v = np.linalg.eig(m.astype(float))
    k = int(np.argmin(np.abs(w - 1)))
    ax = np.real(v[:, k])
    ax = ax / np.max(np.abs(ax))
    ints = np.rint(ax * 6).astype(int)
    g = np.gcd.reduce(np.abs(ints[ints != 0])) if np.any(ints) else 1
    ints = ints // max(int(g), 1)
    if ints[np.flatnonzero(ints)[0]] < 0:
        ints = -ints
    return "[" + " ".join(str(int(i)) for i in ints) + "]"


def _lorentz(x: float, mu: float, gamma: float) -> float:
    """Lorentzian density truncated to [-1, 1] (normalised on that interval)."""
    norm = (math.atan((1 - mu) / gamma) - math.atan((-1 - mu) / gamma)) / math.pi
    return 1.0 / (math.pi * gamma * (1 + ((x - mu) / gamma) ** 2)) / norm


def _p1_keys(hkl: np.ndarray) -> np.ndarray:
    """Key of the {h, -h} class (Friedel mates together): the larger of key(h), key(-h)."""
    return np.maximum(hkl_keys(hkl), hkl_keys(-hkl))


def normalise(
    obs: Observations,
    nshell: int = 12,
    rot_step: float = 5.0,
    min_shell_isig: float = MIN_SHELL_ISIG,
) -> tuple[np.ndarray, np.ndarray]:
    """E² = I/<I> in resolution shells, corrected for a smooth drift of <I> along φ.

    Written here: a scale-free normalisation good enough for correlation scores (POINTLESS
    also normalises in resolution shells, and scores only data to the resolution where the
    signal fades).

    Returns
    -------
    (e2, use)
        Normalised intensities, and the mask of observations in shells whose mean I/σ is at
        least *min_shell_isig* (the lowest shells are always used).
    """
    s2 = 1.0 / obs.d_spacing() ** 2
    n = len(obs)
    nshell = max(1, min(nshell, n // 20))
    edges = np.quantile(s2, np.linspace(0, 1, nshell + 1))
    shell = np.clip(np.searchsorted(edges, s2, "right") - 1, 0, nshell - 1)
    cnt = np.maximum(np.bincount(shell, minlength=nshell), 1)
    mean = np.bincount(shell, weights=obs.intensity, minlength=nshell) / cnt
    isig = np.bincount(shell, weights=obs.intensity / obs.sigma, minlength=nshell) / cnt
    good_shell = (isig >= min_shell_isig) & (mean > 0)
    # shells out to the first weak one (weak shells give E² of noise over a near-zero mean)
    last = int(np.argmin(good_shell)) if not good_shell.all() else nshell
    good_shell[:] = False
    good_shell[: max(last, min(3, nshell))] = True
    good_shell &= mean > 0
    e2 = obs.intensity / np.where(mean[shell] > 0, mean[shell], 1.0)
    use = good_shell[shell]
    span = float(obs.rot.max() - obs.rot.min()) if n else 0.0
    if span > rot_step and use.any():
        nb = int(math.ceil(span / rot_step))
        rb = np.clip(((obs.rot - obs.rot.min()) / rot_step).astype(int), 0, nb - 1)
        rmean = np.bincount(rb[use], weights=e2[use], minlength=nb) / np.maximum(
            np.bincount(rb[use], minlength=nb), 1
        )
        rmean = np.where(rmean > 0.05, rmean, 1.0)
        e2 = e2 / rmean[rb]
    return e2, use


def _pair_cc(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def score_laue_groups(
    obs: Observations, max_obliq: float = 2.0, min_isig: float = 0.0
) -> LaueResult:
    """Score the symmetry elements of the lattice and rank the candidate Laue groups.

    Parameters
    ----------
    obs
        Observations with partials summed (:func:`~mosflm_py.scaling.observations.sum_partials`).
    max_obliq
        Tolerance (deg) of the lattice-symmetry search (gemmi ``find_lattice_symmetry``).
    min_isig
        Observations with I/σ below this are not used (0: all).

    Raises
    ------
    QuickScaleError
        Fewer than 10 observations.
    """
    sel = obs.intensity / obs.sigma >= min_isig if min_isig > 0 else slice(None)
    o = obs.take(sel) if min_isig > 0 else obs
    if len(o) < 10:
        raise QuickScaleError(f"only {len(o)} observations: too few to choose a Laue group")
    centring = o.space_group.centring_type()
    lattice_ops = gemmi.find_lattice_symmetry(o.cell, centring, max_obliq)
    rots = [_rot(op) for op in lattice_ops.sym_ops]
    group = {_key(r): r for r in rots}
    lattice_name = _laue_name(list(group.values()), lattice_ops.cen_ops)
    # symmetry elements: distinct cyclic subgroups generated by one rotation
    elements: list[SymmetryElement] = []
    seen: set[frozenset] = set()
    for r in sorted(group.values(), key=lambda m: -_order(m)):
        if _order(r) == 1:
            continue
        cyc = _closure([r])
        ks = frozenset(cyc)
        if ks in seen:
            continue
        seen.add(ks)
        ops = [m for m in cyc.values() if _order(m) == _order(r)]  # 4+ and 4-, not 2
        elements.append(SymmetryElement(order=_order(r), ops=ops, axis=_axis_label(r, o.cell)))
    # P-1 merged E² values
    e2, use = normalise(o)
    o = o.take(use)
    e2 = e2[use]
    if len(o) < 10:
        raise QuickScaleError(
            "too few observations with a measurable signal (mean I/sigma "
            f"below {MIN_SHELL_ISIG} in all resolution shells)"
        )
    keys = _p1_keys(o.hkl)
    uk, inv, cnt = np.unique(keys, return_inverse=True, return_counts=True)
    sum_e = np.bincount(inv, weights=e2)
    mean_e = sum_e / cnt
    rep = np.zeros(len(uk), np.int64)
    rep[inv] = np.arange(len(o))
    hkl_u = o.hkl[rep]
    # identity: pairs of repeated measurements of one P-1 reflection (first two of each)
    order = np.argsort(inv, kind="stable")
    inv_s = inv[order]
    firsts = np.flatnonzero(np.r_[True, inv_s[1:] != inv_s[:-1]])
    multi = firsts[(firsts + 1 < len(inv_s))]
    multi = multi[inv_s[np.minimum(multi + 1, len(inv_s) - 1)] == inv_s[multi]]
    cc_id = _pair_cc(e2[order[multi]], e2[order[multi + 1]])
    n_id = len(multi)
    # score each element on the P-1 merged values
    for el in elements:
        a_list, b_list = [], []
        for m in el.ops:
            k2 = _p1_keys(hkl_u @ m)
            pos = np.searchsorted(uk, k2)
            pos = np.clip(pos, 0, len(uk) - 1)
            hit = (uk[pos] == k2) & (pos != np.arange(len(uk)))
            i = np.flatnonzero(hit)
            j = pos[hit]
            keep = i < j  # each unordered pair once
            a_list.append(mean_e[i[keep]])
            b_list.append(mean_e[j[keep]])
        a = np.concatenate(a_list) if a_list else np.zeros(0)
        b = np.concatenate(b_list) if b_list else np.zeros(0)
        el.n_pairs = len(a)
        el.cc = _pair_cc(np.r_[a, b], np.r_[b, a])
    # expected CC if present
    notes = []
    if n_id >= 20 and np.isfinite(cc_id):
        expected = float(np.clip(cc_id, 0.3, 1.0))
    else:
        ccs = [e.cc for e in elements if np.isfinite(e.cc) and e.n_pairs >= 10]
        expected = float(np.clip(max(ccs) if ccs else 1.0, 0.3, 1.0))
        notes.append(
            f"only {n_id} repeated measurements: the CC expected for symmetry-related "
            f"reflections is taken from the best element ({expected:.2f})"
        )
    for el in elements:
        if el.n_pairs < MIN_PAIRS or not np.isfinite(el.cc):
            el.likelihood, el.z_cc = 0.5, float("nan")
            continue
        sigma = max(1.0 / math.sqrt(max(el.n_pairs - 3, 1)), SIGMA_FLOOR)
        lp = _lorentz(el.cc, expected, sigma)
        la = _lorentz(el.cc, 0.0, sigma)
        el.likelihood = lp / (lp + la)
        el.z_cc = el.cc / (1.0 / math.sqrt(max(el.n_pairs - 3, 1)))
    # candidate groups: closures of every pair of lattice rotations
    subgroups: dict[frozenset, dict[tuple, np.ndarray]] = {}
    allr = list(group.values())
    for a, b in itertools.combinations_with_replacement(range(len(allr)), 2):
        g = _closure([allr[a], allr[b]])
        subgroups.setdefault(frozenset(g), g)
    candidates = []
    for ks, g in subgroups.items():
        inside = [i for i, el in enumerate(elements) if all(_key(m) in ks for m in el.ops)]
        like = 1.0
        for i, el in enumerate(elements):
            like *= el.likelihood if i in inside else 1.0 - el.likelihood
        sg = _space_group_of(list(g.values()), lattice_ops.cen_ops)
        cc_in = [elements[i].cc for i in inside if np.isfinite(elements[i].cc)]
        cc_out = [el.cc for i, el in enumerate(elements) if i not in inside and np.isfinite(el.cc)]
        candidates.append(
            LaueCandidate(
                laue=_laue_name(list(g.values()), lattice_ops.cen_ops),
                space_group=sg,
                ops=list(g.values()),
                elements=inside,
                likelihood=like,
                cc_in=float(np.mean(cc_in)) if cc_in else float("nan"),
                cc_out=float(np.mean(cc_out)) if cc_out else float("nan"),
            )
        )
    total = sum(c.likelihood for c in candidates) or 1.0
    for c in candidates:
        c.probability = c.likelihood / total
    candidates.sort(key=lambda c: (-c.probability, len(c.ops)))
    return LaueResult(
        lattice=lattice_name,
        elements=elements,
        candidates=candidates,
        cc_identity=cc_id,
        n_identity=n_id,
        expected_cc=expected,
        n_reflections=len(uk),
        max_obliq=max_obliq,
        notes=notes,
    )


def _group_ops(rots: list[np.ndarray], cen_ops) -> gemmi.GroupOps:
    ops = []
    for r in rots:
        op = gemmi.Op("x,y,z")
        op.rot = (r * gemmi.Op.DEN).tolist()
        ops.append(op)
    go = gemmi.GroupOps(ops)
    go.cen_ops = cen_ops
    return go


def _space_group_of(rots: list[np.ndarray], cen_ops) -> gemmi.SpaceGroup | None:
    """The symmorphic space group (tabulated setting) with these rotations, or None."""
    return gemmi.find_spacegroup_by_ops(_group_ops(rots, cen_ops))


_LAUE_BY_PG = {
    "1": "-1",
    "2": "2/m",
    "222": "mmm",
    "4": "4/m",
    "422": "4/mmm",
    "3": "-3",
    "32": "-3m",
    "312": "-3m",
    "321": "-3m",
    "6": "6/m",
    "622": "6/mmm",
    "23": "m-3",
    "432": "m-3m",
}


def _laue_name(rots: list[np.ndarray], cen_ops) -> str:
    sg = _space_group_of(rots, cen_ops)
    if sg is not None:
        return sg.laue_str()
    orders = sorted(_order(r) for r in rots)
    n = len(rots)
    if n == 1:
        return "-1"
    if n == 2:
        return "2/m"
    if n == 3:
        return "-3"
    if n == 4:
        return "4/m" if 4 in orders else "mmm"
    if n == 6:
        return "6/m" if 6 in orders else "-3m"
    if n == 8:
        return "4/mmm"
    if n == 12:
        return "6/mmm" if 6 in orders else "m-3"
    return "m-3m"
