"""Tests of the loggraph writer/parser and the MOSFLM SUMMARY tables."""

from __future__ import annotations

import math

import pytest

from mosflm_py.output import summary as S
from mosflm_py.output.loggraph import Graph, LoggraphTable, parse_loggraph


def detector_rows(n=3):
    return [
        S.DetectorImageResult(
            image=k + 1, ccx=0.01 * k, ccy=-0.02, ccom=0.1, dist=169.65 + 0.01 * k, yscale=0.9998,
            tilt=12.0, twist=-3.0, roff=0.0, toff=0.01, resid=0.023, wresid=0.6, full=3000 + k,
            part=967, ovrl=4, neg=100, bad=k, i_sigi=18.2, i_sigi_outer=2.1 if k else None,
            rsym=0.041, nsym=120, sdrat=1.1,
        )
        for k in range(n)
    ]  # fmt: skip


def postref_rows(n=3):
    return [
        S.PostrefImageResult(
            image=k + 2, phix=0.05 * k, phiy=-0.1, phiz=0.2, cell=(51.62, 51.62, 157.6, 90, 90, 90),
            mosaic=0.45, divh=0.02, divv=0.01, resid=0.042, nref=512,
        )
        for k in range(n)
    ]  # fmt: skip


def test_grammar_four_markers_and_headers():
    t = LoggraphTable(
        "My table",
        [Graph("a v b", (1, 2)), Graph("c v b", (1, 3), "N")],
        ["X", "Y value", "Z"],
        [[1, 2.5, None], [2, math.nan, 3.25]],
    )
    text = t.format()
    lines = text.splitlines()
    assert lines[0] == "$TABLE: My table:"
    assert lines[1] == "$GRAPHS :a v b:A:1,2:"
    assert lines[2].strip() == ":c v b:N:1,3: $$"
    assert lines[3].split() == ["X", "Y_value", "Z", "$$"]
    assert text.count("$$") == 4
    assert lines[5].split() == ["1", "2.5", "******"]
    assert lines[6].split() == ["2", "******", "3.25"]
    (back,) = parse_loggraph(text)
    assert back.title == "My table"
    assert back.columns == ["X", "Y_value", "Z"]
    assert back.graphs == [Graph("a v b", (1, 2), "A"), Graph("c v b", (1, 3), "N")]
    assert back.rows[0][:2] == [1.0, 2.5] and math.isnan(back.rows[0][2])


def test_table_validation():
    with pytest.raises(ValueError, match="columns outside"):
        LoggraphTable("t", [Graph("g", (1, 4))], ["A", "B"], [])
    with pytest.raises(ValueError, match="row 0"):
        LoggraphTable("t", [Graph("g", (1, 2))], ["A", "B"], [[1]])
    with pytest.raises(ValueError, match="title"):
        LoggraphTable("t: x", [], ["A"], [])


def test_detector_and_postref_tables_as_mosflm():
    t1 = S.detector_parameters_table(detector_rows())
    t2 = S.postrefinement_table(postref_rows())
    text = t1.format() + "\n" + t2.format()
    assert len(text.split("$$")) == 9  # xia2's check: exactly two tables
    p1, p2 = parse_loggraph(text)
    assert p1.title == "Refined detector parameters"
    assert len(p1.columns) == 22
    assert p1.columns[:6] == ["IMAGE", "CCX", "CCY", "CCOM", "DIST", "YSCAL"]
    assert p1.columns[17:] == ["I/sigI", "I/sgI_out", "Rsym", "Nsym", "SDRAT"]
    assert [(g.columns, g.scale) for g in p1.graphs] == [
        ((1, 2, 3, 4), "A"), ((1, 5), "A"), ((1, 6), "A"), ((1, 7, 8), "A"), ((1, 9, 10), "A"),
        ((1, 11, 12), "A"), ((1, 18, 19), "N"), ((1, 20), "N"), ((1, 22), "N"), ((1, 15, 17), "A"),
    ]  # fmt: skip
    assert p1.column("DIST") == pytest.approx([169.65, 169.66, 169.67])
    assert p1.column("FULL") == [3000, 3001, 3002]
    assert math.isnan(p1.column("I/sgI_out")[0]) and p1.column("I/sgI_out")[1] == 2.1
    assert p2.title == "Post refinement"
    assert p2.columns == ["Image", "PHIX", "PHIY", "PHIZ", "A", "B", "C", "ALPHA", "BETA",
                          "GAMMA", "MOSAIC", "DIVH", "DIVV", "Resid", "NR"]  # fmt: skip
    assert [g.title for g in p2.graphs] == [
        "Missets phix phiy phiz v image", "Cell parameters A,B,C v image",
        "Cell angles alpha beta gamma v image", "Mosaic spread v image",
        "Beam divergences v image",
    ]  # fmt: skip
    assert p2.column("Image") == [2, 3, 4]
    assert p2.column("PHIX") == pytest.approx([0.0, 0.05, 0.1])


def test_image_and_cell_tables_parse():
    counts = [S.ImageCounts(k, 3000, 900, 5, 2, 1, 15.0, 2.0, 14.5, None) for k in (1, 2)]
    cycles = [S.CellCycle(c, (51.6, 51.6, 157.6, 90.0, 90.0, 90.0), 0.03 / c, 0.05, 800)
              for c in (1, 2, 3)]  # fmt: skip
    per_image = [S.CellImageCycle(c, i, 0.02, 0.9999, 169.6) for c in (1, 2) for i in (1, 60)]
    text = "".join(t.format() for t in (S.image_statistics_table(counts),
                                        S.cell_refinement_table(cycles),
                                        S.cell_refinement_images_table(per_image)))  # fmt: skip
    a, b, c = parse_loggraph(text)
    assert a.column("OVRLOAD") == [2, 2] and math.isnan(a.column("IsigI_sum_out")[0])
    assert b.column("RMSRES") == pytest.approx([0.03, 0.015, 0.01], abs=1e-4)
    assert c.column("Image") == [1, 60, 1, 60] and c.column("N") == [1, 2, 3, 4]


def test_parse_real_style_mosflm_table():
    text = """ some log text
$TABLE: Post refinement:
$GRAPHS :Missets phix phiy phiz v image:A:1,2,3,4:
        :Mosaic spread v image:A:1,11: $$
 Image   PHIX   PHIY   PHIZ      A      B      C  ALPHA   BETA  GAMMA MOSAIC   DIVH   DIVV  Resid  NR $$
 $$
     2  0.020 -0.030  0.010 51.616 51.616157.605 90.000 90.000 90.000  0.450  0.020  0.010  0.042 512
$$
trailing
"""  # noqa: E501
    (t,) = parse_loggraph(text)
    assert t.graphs[1] == Graph("Mosaic spread v image", (1, 11), "A")
    assert t.rows[0][:4] == [2.0, 0.02, -0.03, 0.01]
    with pytest.raises(ValueError, match="markers"):
        parse_loggraph("$TABLE: broken:\n$GRAPHS :a:A:1,2: $$\nX Y $$\n")


def test_summary_writer_streams_complete_tables(tmp_path):
    path = tmp_path / "SUMMARY"
    w = S.SummaryWriter(path, header="Summary file of mosflm_py run\n")
    assert path.read_text() == "Summary file of mosflm_py run\n"
    w.add_table(S.detector_parameters_table(detector_rows(1)))
    assert len(parse_loggraph(path.read_text())) == 1
    w.add_table(S.detector_parameters_table(detector_rows(3)))  # replaced, not duplicated
    w.add_table(S.postrefinement_table(postref_rows(2)))
    w.add_text("WARNINGS\n")
    text = path.read_text()
    assert text == w.text()
    tables = parse_loggraph(text)
    assert [t.title for t in tables] == ["Refined detector parameters", "Post refinement"]
    assert len(tables[0].rows) == 3
    assert text.endswith("WARNINGS\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SUMMARY"]  # no temp files left
