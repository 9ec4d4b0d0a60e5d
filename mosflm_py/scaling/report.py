"""The HTML report: one self-contained file (graphs embedded as PNG data URIs, no scripts, no
network fetches) plus the same graphs as PNG files beside it for terminals without a browser.

Sections follow iMosflm's panes and QuickScale's output: a "Table 1" summary with warnings and
advice, the autoindexing solutions and an image with the predictions, the integration graphs
(refined detector and crystal parameters, reflection counts and ⟨I/σ⟩ per image, when the
PROCESS run is known), the Laue-group choice, the merging statistics table and graphs against
resolution, and the scales, B factors and Rmerge against batch, and the standard profiles of
every detector region for a few blocks of images (iMosflm's profiles grid, drawn from the
profile maps PROCESS logs: peak pixels in grey levels, background pixels light blue, averaged
profiles framed in red).
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mosflm_py.atomic import atomic_write_bytes, atomic_write_text
from mosflm_py.output.plot import Curve, _font, png_bytes, render_line_plot, resolution_ticks
from mosflm_py.scaling.pipeline import QuickScaleResult

__all__ = ["advice", "write_report"]

CSS = """body{font-family:sans-serif;margin:1.5em;max-width:1200px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
td,th{border:1px solid #bbb;padding:2px 6px;text-align:right}th{background:#eee}
td.l,th.l{text-align:left}.graphs img{margin:4px;border:1px solid #ddd}
.warn{background:#fff4e0;border-left:4px solid #e69500;padding:4px 8px;margin:4px 0}
.ok{background:#eaf6ea;border-left:4px solid #3a3;padding:4px 8px;margin:4px 0}"""


def _f(x, fmt=".3f") -> str:
    try:
        return "-" if x is None or not math.isfinite(float(x)) else format(x, fmt)
    except (TypeError, ValueError):
        return html.escape(str(x))


def _table(headers: list[str], rows: list[list], left: int = 0) -> str:
    th = "".join(
        f"<th{' class=l' if i < left else ''}>{html.escape(h)}</th>" for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=l' if i < left else ''}>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{th}</tr>{body}</table>"


def advice(res: QuickScaleResult) -> list[tuple[str, str]]:
    """(warning, advice) pairs about the dataset, as iMosflm's warnings carry advice."""
    out = []
    st = res.stats
    ov = st.overall
    laue = res.symm.laue
    if laue is not None and laue.confidence < 0.5:
        out.append(
            (
                f"The Laue group {laue.best.laue} is uncertain (confidence {laue.confidence:.2f}).",
                "Integrate a wider rotation range, or give QUICKSCALE SPACEGROUP.",
            )
        )
    if math.isfinite(ov.completeness) and ov.completeness < 90:
        out.append(
            (
                f"The data are {ov.completeness:.1f}% complete.",
                "Collect more rotation (STRATEGY tells how much) before leaving the crystal.",
            )
        )
    if st.cutoff_cc_half and st.cutoff_cc_half > ov.d_min * 1.05:
        out.append(
            (
                f"CC1/2 falls below {st.cc_half_limit:g} at {st.cutoff_cc_half:.2f} A, "
                f"inside the integration limit {ov.d_min:.2f} A.",
                f"Consider RESOLUTION {st.cutoff_cc_half:.2f} for the final processing.",
            )
        )
    elif (
        st.cutoff_cc_half is None
        and st.shells
        and math.isfinite(st.shells[-1].cc_half)
        and st.shells[-1].cc_half > 0.5
    ):
        out.append(
            (
                "The data are strong to the edge of the integration limit.",
                "The crystal may diffract further: integrate to higher resolution (move the "
                "detector closer if the spots reach the edge).",
            )
        )
    if math.isfinite(ov.r_merge) and ov.r_merge > 0.15 and ov.i_over_sigma > 5:
        out.append(
            (
                f"Rmerge {ov.r_merge:.3f} is high for data this strong.",
                "Check the Laue group, the integration (mosaic spread, profiles) and "
                "radiation damage (scale and B against batch).",
            )
        )
    bf = np.array([b.bfactor for b in res.batches])
    if len(bf) > 2 and np.ptp(bf) > 10:
        out.append(
            (
                f"The relative B factor changes by {np.ptp(bf):.0f} A^2 over the sweep.",
                "Strong radiation damage: consider excluding the last images.",
            )
        )
    if res.n_outliers > 0.05 * max(len(res.g), 1):
        out.append(
            (
                f"{res.n_outliers} observations ({100 * res.n_outliers / len(res.g):.1f}%) "
                "were rejected as outliers.",
                "Look for ice rings, shadows or a wrong Laue group.",
            )
        )
    return out


def line_plot(
    title: str,
    xlabel: str,
    ylabel: str,
    series: list[tuple[str, object, object]],
    x_resolution: bool = False,
    y_min: float | None = None,
    y_max: float | None = None,
) -> bytes:
    """PNG bytes (560 x 340 pixels) of one report graph drawn by
    :func:`mosflm_py.output.plot.render_line_plot`.

    Parameters
    ----------
    series
        (label, x, y) triples; missing (NaN) points are skipped and break the line; points are
        marked when a series has at most 60.
    x_resolution
        x values are 1/d² (Å⁻²); tick labels show d (Å), as Aimless's resolution axes.
    y_min, y_max
        Fixed y range ends (default: from the data, starting at 0 when the lowest value is
        below 0.3 of the highest).
    """
    curves = [
        Curve(
            np.asarray(x, float),
            np.asarray(y, float),
            name,
            colour=k,
            markers=len(np.asarray(x)) <= 60,
        )
        for k, (name, x, y) in enumerate(series)
    ]
    ys = np.concatenate([np.asarray(c.y) for c in curves]) if curves else np.zeros(0)
    ys = ys[np.isfinite(ys)]
    if y_min is None and ys.size and 0 < ys.min() < 0.3 * ys.max():
        y_min = 0.0
    img = render_line_plot(
        curves,
        title,
        xlabel,
        ylabel,
        ylim=(y_min, y_max),
        size=(560, 340),
        legend="above",
        x_ticks=resolution_ticks if x_resolution else None,
    )
    return png_bytes(img)


def _plots(res: QuickScaleResult, extra: dict) -> list[tuple[str, str, bytes]]:
    """(file suffix, caption, png) of every graph."""
    st = res.stats
    s = np.array([1 / sh.d_min**2 for sh in st.shells])
    get = {
        k: np.array([getattr(sh, k) for sh in st.shells], float)
        for k in (
            "r_merge",
            "r_meas",
            "r_pim",
            "cc_half",
            "cc_star",
            "cc_anom",
            "i_over_sigma",
            "completeness",
            "multiplicity",
            "anom_completeness",
        )
    }
    b = res.batches
    bx = np.array([r.batch for r in b], float)
    out = [
        (
            "rfactors_resolution",
            "Rmerge, Rmeas, Rpim against resolution",
            line_plot(
                "R factors v resolution",
                "d (A)",
                "R",
                [
                    ("Rmerge", s, get["r_merge"]),
                    ("Rmeas", s, get["r_meas"]),
                    ("Rpim", s, get["r_pim"]),
                ],
                x_resolution=True,
            ),
        ),
        (
            "cc_resolution",
            "CC1/2, CC* and CC_anom against resolution",
            line_plot(
                "CC v resolution",
                "d (A)",
                "CC",
                [
                    ("CC1/2", s, get["cc_half"]),
                    ("CC*", s, get["cc_star"]),
                    ("CCanom", s, get["cc_anom"]),
                ],
                x_resolution=True,
                y_max=1.0,
            ),
        ),
        (
            "isigma_resolution",
            "<I/sigma(I)> of merged data against resolution",
            line_plot(
                "<I/sigma> v resolution",
                "d (A)",
                "I/sig",
                [("Mn(I/sd)", s, get["i_over_sigma"])],
                x_resolution=True,
            ),
        ),
        (
            "completeness_resolution",
            "Completeness against resolution",
            line_plot(
                "Completeness v resolution",
                "d (A)",
                "%",
                [
                    ("Completeness", s, get["completeness"]),
                    ("Anomalous", s, get["anom_completeness"]),
                ],
                x_resolution=True,
                y_min=0,
                y_max=100,
            ),
        ),
        (
            "multiplicity_resolution",
            "Multiplicity against resolution",
            line_plot(
                "Multiplicity v resolution",
                "d (A)",
                "mult",
                [("Multiplicity", s, get["multiplicity"])],
                x_resolution=True,
            ),
        ),
        (
            "scale_batch",
            "Scale factor against batch",
            line_plot("Scale v batch", "batch", "scale", [("Scale", bx, [r.scale for r in b])]),
        ),
        (
            "bfactor_batch",
            "Relative B factor against batch",
            line_plot(
                "Relative B v batch", "batch", "B (A^2)", [("B", bx, [r.bfactor for r in b])]
            ),
        ),
        (
            "rmerge_batch",
            "Rmerge against batch",
            line_plot(
                "Rmerge v batch", "batch", "Rmerge", [("Rmerge", bx, [r.r_merge for r in b])]
            ),
        ),
    ]
    img = extra.get("images")
    if img:
        x = np.array(img["image"], float)
        out += [
            (
                "beam_image",
                "Refined direct-beam position against image",
                line_plot(
                    "Beam position v image",
                    "image",
                    "mm",
                    [("beam X", x, img["beam_x"]), ("beam Y", x, img["beam_y"])],
                ),
            ),
            (
                "distance_image",
                "Refined crystal-to-detector distance against image",
                line_plot("Distance v image", "image", "mm", [("distance", x, img["distance"])]),
            ),
            (
                "tilt_twist_image",
                "Detector tilt and twist against image",
                line_plot(
                    "Tilt, twist v image",
                    "image",
                    "0.01 deg",
                    [("tilt", x, img["tilt"]), ("twist", x, img["twist"])],
                ),
            ),
            (
                "yscale_image",
                "YSCALE against image",
                line_plot("Yscale v image", "image", "yscale", [("yscale", x, img["yscale"])]),
            ),
            (
                "missets_image",
                "Crystal missetting angles against image",
                line_plot(
                    "Missets v image",
                    "image",
                    "deg",
                    [
                        ("phi x", x, img["phix"]),
                        ("phi y", x, img["phiy"]),
                        ("phi z", x, img["phiz"]),
                    ],
                ),
            ),
            (
                "mosaic_image",
                "Mosaic spread against image",
                line_plot("Mosaic spread v image", "image", "deg", [("mosaic", x, img["mosaic"])]),
            ),
            (
                "rms_image",
                "Rms positional residual against image",
                line_plot("Rms residual v image", "image", "mm", [("rms", x, img["rms"])]),
            ),
            (
                "counts_image",
                "Reflections per image",
                line_plot(
                    "Reflections v image",
                    "image",
                    "number",
                    [
                        ("fulls", x, img["full"]),
                        ("partials", x, img["partial"]),
                        ("overlaps", x, img["overlap"]),
                        ("overloads", x, img["overload"]),
                        ("bad", x, img["bad"]),
                    ],
                ),
            ),
            (
                "isigma_image",
                "<I/sigma(I)> per image, all and outer shell",
                line_plot(
                    "<I/sigma> v image",
                    "image",
                    "I/sig",
                    [("all (profile)", x, img["isig"]), ("outer shell", x, img["isig_outer"])],
                ),
            ),
        ]
    return out


PROFILE_CELL = 6  # screen pixels per profile pixel in the grid


def render_profiles_grid(block: dict):
    """PIL image of the standard profiles of one block, one cell per detector region.

    *block* is ``{"first": int, "last": int, "regions": [...]}`` with PROCESS's per-region
    rows (:meth:`mosflm_py.integration.profiles.StandardProfiles.report`: ``ix``, ``iy``,
    ``n_contrib``, ``averaged`` and the character ``map``: digits 0-9 are peak values scaled
    to the maximum, '.' background, ' ' outside the box). Cells are placed as the regions lie
    on the detector (ix along the slow axis downwards, iy along the fast axis); the peak is
    drawn in grey levels (black = maximum), background pixels light blue, an averaged
    profile (too few reflections in its region) has a red frame, as iMosflm draws them.
    """
    regions = block["regions"]
    gx = max(r["ix"] for r in regions)
    gy = max(r["iy"] for r in regions)
    rows = max(len(r["map"]) for r in regions)
    cols = max((max((len(line) for line in r["map"]), default=0) for r in regions), default=0)
    c = PROFILE_CELL
    cw, ch = cols * c + 10, rows * c + 22
    title_h = 22
    img = Image.new("RGB", (gy * cw + 10, gx * ch + title_h + 10), "white")
    draw = ImageDraw.Draw(img)
    font = _font(12)
    draw.text(
        (6, 4),
        f"Standard profiles, images {block['first']}-{block['last']} "
        "(red frame: averaged with neighbours)",
        fill="black",
        font=font,
    )
    for r in regions:
        x0 = 5 + (r["iy"] - 1) * cw
        y0 = title_h + (r["ix"] - 1) * ch
        for a, line in enumerate(r["map"]):
            for b, chr_ in enumerate(line):
                if chr_ == " ":
                    continue
                if chr_ == ".":
                    colour = (214, 230, 245)
                elif chr_ == "*":
                    colour = (255, 200, 0)
                else:
                    v = 255 - int(int(chr_) * 255 / 9)
                    colour = (v, v, v)
                xa, ya = x0 + 5 + b * c, y0 + 5 + a * c
                draw.rectangle([xa, ya, xa + c - 1, ya + c - 1], fill=colour)
        frame = (200, 0, 0) if r["averaged"] else (170, 170, 170)
        draw.rectangle([x0 + 2, y0 + 2, x0 + cw - 3, y0 + rows * c + 8], outline=frame, width=2)
        draw.text(
            (x0 + 5, y0 + rows * c + 9), f"{r['region']}: {r['n_contrib']}", fill="black", font=font
        )
    return img


def profile_blocks_shown(blocks: list[dict], most: int = 3) -> list[dict]:
    """The blocks whose profiles the report draws: first, middle and last (all if few)."""
    blocks = [b for b in blocks if b.get("regions")]
    if len(blocks) <= most:
        return blocks
    pick = sorted({0, len(blocks) // 2, len(blocks) - 1})
    return [blocks[k] for k in pick]


def write_report(
    path: str, res: QuickScaleResult, extra: dict | None = None, warnings: list[str] | None = None
) -> list[str]:
    """Write the HTML report to *path* and the PNG graphs beside it; returns the PNG paths.

    Parameters
    ----------
    extra
        Plain per-image integration data (``{"images": {"image": [...], "beam_x": [...],
        ...}}``), when the report follows a PROCESS run.
    warnings
        Warnings of the run (log text), listed with the dataset's own warnings.
    """
    extra = extra or {}
    st = res.stats
    ov = st.overall
    sg = res.space_group
    o = res.observations
    plots = _plots(res, extra)
    for blk in profile_blocks_shown(extra.get("profiles") or []):
        plots.append(
            (
                f"profiles_{blk['first']}_{blk['last']}",
                f"Standard profiles, images {blk['first']}-{blk['last']}",
                png_bytes(render_profiles_grid(blk)),
            )
        )
    stem = os.path.splitext(path)[0]
    pngs = []
    for suffix, _, png in plots:
        p = f"{stem}_{suffix}.png"
        atomic_write_bytes(p, png)
        pngs.append(p)
    parts = [
        f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>mosflm-py QuickScale report</title><style>{CSS}</style></head><body>",
        "<h1>mosflm-py QuickScale report</h1>",
        f"<p>{html.escape(o.source)} &mdash; {_dt.datetime.now():%d %B %Y %H:%M}</p>",
    ]
    # summary ("Table 1")
    inner, outer = (st.shells[0], st.shells[-1]) if st.shells else (ov, ov)
    keys = [
        ("High resolution limit (A)", "d_min", ".2f"),
        ("Low resolution limit (A)", "d_max", ".2f"),
        ("Rmerge", "r_merge", ".3f"),
        ("Rmeas", "r_meas", ".3f"),
        ("Rpim", "r_pim", ".3f"),
        ("CC1/2", "cc_half", ".3f"),
        ("CC*", "cc_star", ".3f"),
        ("Mean I/sigma(I)", "i_over_sigma", ".1f"),
        ("Completeness (%)", "completeness", ".1f"),
        ("Multiplicity", "multiplicity", ".1f"),
        ("Observations", "n_obs", "d"),
        ("Unique reflections", "n_unique", "d"),
        ("Anomalous completeness (%)", "anom_completeness", ".1f"),
        ("Anomalous multiplicity", "anom_multiplicity", ".1f"),
        ("CC anom", "cc_anom", ".3f"),
    ]
    rows = [
        [html.escape(lab)] + [_f(getattr(x, k), f) for x in (ov, inner, outer)]
        for lab, k, f in keys
    ]
    parts.append("<h2 id=summary>Summary</h2>")
    parts.append(
        f"<p>Space group for merging <b>{html.escape(sg.hm)}</b> (Laue group "
        f"{html.escape(sg.laue_str())}); cell "
        f"{' '.join(f'{c:.2f}' for c in o.cell.parameters)}; wavelength "
        f"{o.wavelength:.4f} A</p>"
    )
    parts.append(_table(["", "Overall", "Inner shell", "Outer shell"], rows, left=1))
    cut = []
    cut.append(
        f"CC1/2 &gt; {st.cc_half_limit:g} to {st.cutoff_cc_half:.2f} A"
        if st.cutoff_cc_half
        else f"CC1/2 &gt; {st.cc_half_limit:g} to the edge"
    )
    cut.append(
        f"&lt;I/&sigma;&gt; &gt; {st.isig_limit:g} to {st.cutoff_isig:.2f} A"
        if st.cutoff_isig
        else f"&lt;I/&sigma;&gt; &gt; {st.isig_limit:g} to the edge"
    )
    parts.append(f"<p>Suggested resolution cut-off: {'; '.join(cut)}.</p>")
    parts.append("<h2 id=warnings>Warnings and advice</h2>")
    adv = advice(res)
    for w, a in adv:
        parts.append(f"<div class=warn><b>{html.escape(w)}</b> {html.escape(a)}</div>")
    for w in warnings or []:
        parts.append(f"<div class=warn>{html.escape(w)}</div>")
    if not adv and not warnings:
        parts.append("<div class=ok>No warnings.</div>")
    # integration
    img = extra.get("images")
    captions = {suffix: (cap, png) for suffix, cap, png in plots}

    def figs(suffixes):
        return (
            "<div class=graphs>"
            + "".join(
                f"<figure style='display:inline-block'><img alt='{html.escape(captions[s][0])}' "
                f"src='data:image/png;base64,{base64.b64encode(captions[s][1]).decode()}'>"
                f"<figcaption>{html.escape(captions[s][0])}</figcaption></figure>"
                for s in suffixes
                if s in captions
            )
            + "</div>"
        )

    idx = extra.get("indexing")
    if idx:
        parts.append("<h2 id=indexing>Indexing</h2>")
        shown = [r for r in idx["rows"] if r[2] <= 200] or idx["rows"][:10]
        rows = []
        for r in shown:
            mark = "<b>&rarr;</b>" if r[0] - 1 == idx["chosen"] else ""
            rows.append(
                [
                    f"{mark}{r[0]}",
                    html.escape(r[1]),
                    _f(r[2], ".0f"),
                    html.escape(r[3]),
                    _f(r[4], ".3f"),
                    _f(r[5], ".2f"),
                    _f(r[6], ".3f"),
                    "yes" if r[7] else "",
                ]
            )
        parts.append(
            _table(
                [
                    "No",
                    "Lattice",
                    "Penalty",
                    "Cell",
                    "sd(cell)",
                    "Frac indexed",
                    "rms (mm)",
                    "Refined",
                ],
                rows,
                left=4,
            )
        )
    pic = extra.get("picture")
    if pic and os.path.exists(pic):
        data = Path(pic).read_bytes()
        parts.append(
            f"<h2 id=image>Image {extra.get('picture_image', '')} with the predictions</h2>"
        )
        parts.append(
            "<p>Blue fully recorded, yellow partial, red overlapped, green too wide; "
            "magenta crosses found spots; orange the direct beam.</p>"
        )
        parts.append(
            f"<img style='max-width:100%' alt='image with predictions' "
            f"src='data:image/png;base64,{base64.b64encode(data).decode()}'>"
        )
    if img:
        parts.append("<h2 id=integration>Integration</h2>")
        parts.append(f"<p>{len(img['image'])} images integrated.</p>")
        parts.append(
            figs(
                [
                    "beam_image",
                    "distance_image",
                    "tilt_twist_image",
                    "yscale_image",
                    "missets_image",
                    "mosaic_image",
                    "rms_image",
                    "counts_image",
                    "isigma_image",
                ]
            )
        )
    shown = profile_blocks_shown(extra.get("profiles") or [])
    if shown:
        n_blocks = len([b for b in extra["profiles"] if b.get("regions")])
        parts.append("<h2 id=profiles>Standard profiles</h2>")
        parts.append(
            f"<p>The standard profile of every detector region (number: region and its "
            f"reflections), for {len(shown)} of the {n_blocks} blocks of images. Regular, "
            "single-peaked profiles show good diffraction; split or smeared ones show spot "
            "splitting, ice or a poor model. Grey levels: the peak; light blue: background; "
            "red frame: too few reflections, averaged with the neighbouring regions.</p>"
        )
        parts.append(figs([f"profiles_{b['first']}_{b['last']}" for b in shown]))
    # Laue group
    laue = res.symm.laue
    parts.append("<h2 id=symmetry>Laue group (QuickSymm)</h2>")
    p = res.symm.partials
    parts.append(
        f"<p>{p.n_records} records: {p.n_fulls} fulls, {p.n_partial_records} partial "
        f"parts; {p.n_summed} partial sets summed, {p.n_incomplete} incomplete sets "
        f"rejected; {len(o)} observations.</p>"
    )
    if laue is not None:
        parts.append(
            f"<p>Lattice symmetry {html.escape(laue.lattice)}; CC of repeated "
            f"measurements {_f(laue.cc_identity)} ({laue.n_identity} pairs). Best "
            f"Laue group <b>{html.escape(laue.best.laue)}</b> "
            f"({html.escape(laue.best.name)}), confidence {laue.confidence:.3f}.</p>"
        )
        parts.append(
            _table(
                ["Symmetry element", "N pairs", "CC", "Z(CC)", "Likelihood"],
                [
                    [html.escape(e.label), e.n_pairs, _f(e.cc), _f(e.z_cc, ".1f"), _f(e.likelihood)]
                    for e in laue.elements
                ],
                left=1,
            )
        )
        parts.append(
            _table(
                ["Laue group", "Space group", "Probability", "CC for", "CC against"],
                [
                    [
                        html.escape(c.laue),
                        html.escape(c.name),
                        _f(c.probability),
                        _f(c.cc_in),
                        _f(c.cc_out),
                    ]
                    for c in laue.candidates
                ],
                left=2,
            )
        )
    # merging statistics
    parts.append("<h2 id=merging>Merging statistics</h2>")
    hdr = [
        "Dmax",
        "Dmin",
        "Nobs",
        "Nuniq",
        "Compl%",
        "Mult",
        "Rmerge",
        "Rmeas",
        "Rpim",
        "CC1/2",
        "CC*",
        "I/sig",
        "AnoCmp%",
        "AnoMult",
        "CCanom",
    ]

    rows = [s.table_cells() for s in st.shells]
    parts.append(_table(hdr, rows + [["<b>Overall</b>", *ov.table_cells()[1:]]]))
    parts.append(
        figs(
            [
                "rfactors_resolution",
                "cc_resolution",
                "isigma_resolution",
                "completeness_resolution",
                "multiplicity_resolution",
            ]
        )
    )
    parts.append("<h2 id=scaling>Scaling</h2>")
    sc = res.scaling
    parts.append(
        f"<p>Scale every {sc.model.scale_spacing:g} deg and relative B every "
        f"{sc.model.b_spacing:g} deg along the rotation; {sc.cycles} cycles"
        f"{'' if sc.converged else ' (not converged)'}; error model SdFac "
        f"{res.sdfac:.3f}, SdAdd {res.sdadd:.4f}; {res.n_outliers} outliers "
        "rejected.</p>"
    )
    if sc.ln_absorption is not None:
        a = np.exp(sc.ln_absorption)
        parts.append(
            f"<p>Absorption surface: spherical harmonics to order {sc.model.lmax} of the beam "
            f"directions in the crystal frame ({len(sc.model.c)} restrained coefficients); "
            f"correction factor {a.min():.3f} to {a.max():.3f}, rms "
            f"{100 * np.std(sc.ln_absorption):.1f} %.</p>"
        )
    parts.append(figs(["scale_batch", "bfactor_batch", "rmerge_batch"]))
    parts.append(
        f"<p style='color:#777'>PNG copies of the graphs: "
        f"{html.escape(Path(stem).name)}_*.png</p></body></html>"
    )
    atomic_write_text(path, "\n".join(parts))
    return pngs
