"""Tests of the streaming unmerged-MTZ writer (mosflm_py.output.mtz_stream).

Reference: gemmi writing the same records from memory (``build_unmerged_mtz(...)
.write_to_bytes()``); the streamed file must be byte-for-byte identical.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gemmi
import numpy as np
import pytest
from test_output_mtz import CELL, META, make_batches, make_records, rotation

from mosflm_py.errors import MosflmError
from mosflm_py.output import mtz_stream
from mosflm_py.output.mtz import (
    COLUMNS,
    BatchHeader,
    MtzMeta,
    MtzRecords,
    build_unmerged_mtz,
    read_unmerged_mtz,
)
from mosflm_py.output.mtz_stream import UnmergedMtzWriter

REPO = Path(__file__).resolve().parents[1]


def part(rec: MtzRecords, a: int, b: int) -> MtzRecords:
    return MtzRecords(**{f.name: getattr(rec, f.name)[a:b] for f in dataclasses.fields(rec)})


def stream(path, rec, batches, meta=META, cuts=(0, 700, 700, 1900, 3333), columns=COLUMNS):
    """Write *rec* in the chunks delimited by *cuts* (one empty), batches spread over chunks."""
    bounds = list(cuts) + [len(rec)]
    with UnmergedMtzWriter(path, meta, columns) as w:
        for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
            w.add(part(rec, a, b), batches[k::len(bounds) - 1])
    return Path(path).read_bytes()


@pytest.fixture(scope="module")
def streamed(tmp_path_factory):
    path = tmp_path_factory.mktemp("stream") / "s.mtz"
    rec, batches = make_records(4000, seed=3), make_batches()
    data = stream(path, rec, batches)
    return path, rec, batches, data


def test_streamed_file_is_byte_identical_to_gemmi(streamed):
    path, rec, batches, data = streamed
    ref = build_unmerged_mtz(rec, batches, META).write_to_bytes()
    assert len(data) == len(ref)
    assert data == ref


def test_streamed_file_reads_back_equal(streamed):
    path, rec, batches, _ = streamed
    got = read_unmerged_mtz(path)
    ref_mtz = build_unmerged_mtz(rec, batches, META)
    ref = np.array(ref_mtz, copy=False)
    np.testing.assert_array_equal(np.array(got.mtz, copy=False)[:, 3:], ref[:, 3:])
    np.testing.assert_array_equal(got.hkl_original, rec.hkl)
    assert list(got.types.items()) == list(COLUMNS)
    assert got.mtz.nreflections == 4000
    assert got.mtz.spacegroup.xhm() == "P 43 21 2"
    assert got.mtz.cell.parameters == pytest.approx(CELL, abs=1e-4)
    assert got.mtz.history == ["MOSFLM_PY run"]
    assert (got.mtz.resolution_high(), got.mtz.resolution_low()) == pytest.approx(
        (ref_mtz.resolution_high(), ref_mtz.resolution_low()), rel=1e-6
    )  # file cell has 4 decimals
    assert [b["number"] for b in got.batches] == [101, 102, 103, 104]
    for want, b in zip(batches, got.batches):
        np.testing.assert_allclose(b["U"], want.U, atol=1e-6)
        assert b["phistt"] == pytest.approx(want.phi_start, abs=1e-5)


@pytest.mark.parametrize(
    ("space_group", "cell"),
    [
        ("P 1", (40.1, 50.2, 60.3, 80.0, 95.0, 110.0)),
        ("C 1 2 1", (120.0, 40.0, 70.0, 90.0, 105.0, 90.0)),
        ("P 65 2 2", (90.0, 90.0, 140.0, 90.0, 90.0, 120.0)),
        ("I 21 3", (77.7, 77.7, 77.7, 90.0, 90.0, 90.0)),  # many equal-1/d^2 index ties
    ],
)
def test_other_space_groups_byte_identical(tmp_path, space_group, cell):
    meta = dataclasses.replace(META, space_group=space_group, cell=cell)
    rec = make_records(2500, seed=7)
    batches = make_batches()
    data = stream(tmp_path / "o.mtz", rec, batches, meta, cuts=(0, 1, 1200))
    assert data == build_unmerged_mtz(rec, batches, meta).write_to_bytes()


def test_small_internal_slices_and_column_subset(tmp_path, monkeypatch):
    monkeypatch.setattr(mtz_stream, "SLICE_ROWS", 333)  # add() converts in many slices
    rec, batches = make_records(3000, seed=5), make_batches()
    cols = COLUMNS[:5] + (("I", "J"), ("SIGI", "Q"), ("BGPKRATIOS", "R"))
    data = stream(tmp_path / "c.mtz", rec, batches, columns=cols)
    assert data == build_unmerged_mtz(rec, batches, META, cols).write_to_bytes()
    assert list(gemmi.read_mtz_file(str(tmp_path / "c.mtz")).column_labels()) == [
        c[0] for c in cols
    ]


def test_bad_column_selection(tmp_path):
    with pytest.raises(MosflmError, match="H K L"):
        UnmergedMtzWriter(tmp_path / "a.mtz", META, (("BATCH", "B"),))
    with pytest.raises(MosflmError, match="unknown MTZ column"):
        UnmergedMtzWriter(tmp_path / "a.mtz", META, COLUMNS[:3] + (("I", "R"),))
    assert list(tmp_path.iterdir()) == []


def test_no_records_gives_a_valid_empty_file(tmp_path):
    path = tmp_path / "e.mtz"
    batches = make_batches()
    with UnmergedMtzWriter(path, META) as w:
        w.add(make_records(0), batches)
    assert path.read_bytes() == build_unmerged_mtz(make_records(0), batches, META).write_to_bytes()
    mtz = gemmi.read_mtz_file(str(path), with_data=False)  # gemmi 0.7.5 fails on 0 data rows
    assert mtz.nreflections == 0 and len(mtz.batches) == 4
    probe = subprocess.run([sys.executable, "-c", "import iotbx.mtz; o = iotbx.mtz.object("
                            f"{str(path)!r}); print(o.n_reflections(), o.n_batches())"],
                           capture_output=True, text=True)  # fmt: skip
    if probe.returncode == 0:  # cctbx (cmtzlib) reads the empty file completely
        assert probe.stdout.split() == ["0", "4"]


def test_batch_errors_leave_old_file(tmp_path):
    path = tmp_path / "x.mtz"
    path.write_bytes(b"old")
    rec, batches = make_records(500), make_batches()
    with pytest.raises(MosflmError, match="no batch header"):
        with UnmergedMtzWriter(path, META) as w:
            w.add(part(rec, 0, 250), batches[:2])
            w.add(part(rec, 250, 500), batches[2:3])  # batch 104 never given
    with pytest.raises(MosflmError, match="not unique"):
        with UnmergedMtzWriter(path, META) as w:
            w.add(part(rec, 0, 250), batches)
            w.add(part(rec, 250, 500), batches[1:2])
    with pytest.raises(MosflmError, match="without batch headers"):
        with UnmergedMtzWriter(path, META) as w:
            pass
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.mtz"]
    w = UnmergedMtzWriter(path, META)
    w.add(rec, batches)
    w.close()
    with pytest.raises(MosflmError, match="already closed"):
        w.add(rec, [])
    assert read_unmerged_mtz(path).mtz.nreflections == 500


def test_interrupt_inside_with_removes_temporary(tmp_path):
    path = tmp_path / "x.mtz"
    path.write_bytes(b"old")
    rec, batches = make_records(500), make_batches()
    with pytest.raises(KeyboardInterrupt):
        with UnmergedMtzWriter(path, META) as w:
            w.add(rec, batches)
            raise KeyboardInterrupt
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.mtz"]
    w = UnmergedMtzWriter(tmp_path / "y.mtz", META)  # dropped without close()
    w.add(rec, batches)
    del w
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.mtz"]


_SIGINT_CHILD = """
import sys
sys.path.insert(0, {tests!r})
from test_output_mtz import META, make_batches, make_records
from mosflm_py.output.mtz_stream import UnmergedMtzWriter
rec, batches = make_records(20000), make_batches()
with UnmergedMtzWriter(sys.argv[1], META) as w:
    w.add(rec, batches)
    print("ready", flush=True)
    while True:
        w.add(rec)
"""


def test_ctrl_c_in_a_real_process_stops_cleanly(tmp_path):
    """SIGINT (Ctrl-C) while chunks are being written: no temporary left, old file kept."""
    path = tmp_path / "x.mtz"
    path.write_bytes(b"old")
    code = _SIGINT_CHILD.format(tests=str(REPO / "tests"))
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # a few more chunks written to the temporary file
        tmp = [p for p in tmp_path.iterdir() if p.name != "x.mtz"]
        assert len(tmp) == 1 and tmp[0].stat().st_size > 20000 * 18 * 4
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.mtz"]


_MEMORY_CHILD = """
import json, resource, sys, tracemalloc
sys.path.insert(0, {tests!r})
from test_output_mtz import META, make_batches, make_records
from mosflm_py.output.mtz_stream import UnmergedMtzWriter
n_chunk, n_chunks = {n_chunk}, {n_chunks}
rec, batches = make_records(n_chunk, seed=11), make_batches()
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kB
tracemalloc.start()
with UnmergedMtzWriter(sys.argv[1], META) as w:
    w.add(rec, batches)  # warm-up: first chunk (imports, caches, numpy temporaries)
    one_chunk = tracemalloc.get_traced_memory()[1]
    rss_one = rss()
    tracemalloc.reset_peak()
    for _ in range(n_chunks - 1):
        w.add(rec)
peak = tracemalloc.get_traced_memory()[1]
print(json.dumps({{"one_chunk": one_chunk, "peak": peak, "rss_one": rss_one, "rss_end": rss()}}))
"""


def test_memory_does_not_grow_with_the_number_of_chunks(tmp_path):
    """2 million records in 100 chunks of 20 000 (a 144 MB data block).

    Bound: the traced (Python + numpy) peak over the 99 further chunks and close() stays
    below 1.5x the peak of converting and writing one chunk (~20000 x ~0.4 kB), and the
    process's peak RSS grows by less than 2x that (gemmi header, allocator slack), whereas
    holding the rows would need 144 MB.
    """
    n_chunk, n_chunks = 20_000, 100
    path = tmp_path / "big.mtz"
    code = _MEMORY_CHILD.format(tests=str(REPO / "tests"), n_chunk=n_chunk, n_chunks=n_chunks)
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, check=True, timeout=300)  # fmt: skip
    m = json.loads(out.stdout)
    data_bytes = n_chunk * n_chunks * len(COLUMNS) * 4
    assert os.path.getsize(path) > data_bytes
    one = m["one_chunk"]
    assert one < 0.1 * data_bytes
    assert m["peak"] < 1.5 * one, m
    assert m["rss_end"] - m["rss_one"] < 2 * one, m
    mtz = gemmi.read_mtz_file(str(path), with_data=False)
    assert mtz.nreflections == n_chunk * n_chunks


def test_large_file_header_pointer(tmp_path):
    """Beyond 2**31 words the int32 pointer is -1 and the int64 one follows (gemmi, cmtzlib)."""
    w = UnmergedMtzWriter(tmp_path / "p.mtz", META)
    w.add(make_records(10), make_batches())
    first, _ = w._header_bytes()
    assert int(np.frombuffer(first[4:8], "<i4")[0]) == 18 * 10 + 21
    assert first[:4] == b"MTZ " and first[12:20] == bytes(8)
    w._nref = 200_000_000  # pretend: 3.6e9 words
    first, records = w._header_bytes()
    assert int(np.frombuffer(first[4:8], "<i4")[0]) == -1
    assert int(np.frombuffer(first[12:20], "<i8")[0]) == 18 * 200_000_000 + 21
    assert b"NCOL       18    200000000        4" in records
    w.abort()
    assert list(tmp_path.iterdir()) == []


_CCTBX_READER = """
import json, sys
import iotbx.mtz
obj = iotbx.mtz.object(sys.argv[1])
ints = obj.extract_integers("BATCH").data
print(json.dumps({"n": obj.n_reflections(), "nbatch": obj.n_batches(),
                  "batch_sum": int(sum(ints)), "nums": [b.num() for b in obj.batches()],
                  "hkl": [list(h) for h in obj.extract_miller_indices()[:5]]}))
"""


def test_streamed_file_read_by_cctbx_if_available(streamed):
    probe = subprocess.run([sys.executable, "-c", "import iotbx.mtz"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("cctbx (iotbx.mtz) not importable; pip install cctbx-base")
    path, rec, _, _ = streamed
    out = subprocess.run([sys.executable, "-c", _CCTBX_READER, str(path)], capture_output=True,
                         text=True, check=True)  # fmt: skip
    r = json.loads(out.stdout)
    assert r["n"] == len(rec) and r["nbatch"] == 4 and r["nums"] == [101, 102, 103, 104]
    assert r["batch_sum"] == int(rec.batch.sum())
    assert r["hkl"] == read_unmerged_mtz(path).hkl_asu[:5].tolist()


def test_writer_with_many_batches_in_image_order(tmp_path):
    """One chunk per image (as PROCESS would add them), 30 batches, header order = number."""
    rng = np.random.default_rng(2)
    chunks, batches = [], []
    for k in range(30):
        r = make_records(int(rng.integers(0, 80)), n_images=1, seed=k)
        chunks.append(dataclasses.replace(r, batch=np.full(len(r), 201 + k)))
        batches.append(BatchHeader(number=201 + k, phi_start=k * 0.1, phi_end=k * 0.1 + 0.1,
                                   cell=CELL, U=rotation(1), missets_start=(0, 0, 0),
                                   missets_end=(0, 0, 0), mosaic=0.3, wavelength=1.0,
                                   distance=200.0, detector_limits=(0, 2527, 0, 2463)))  # fmt: skip
    path = tmp_path / "b.mtz"
    meta = MtzMeta(cell=CELL, wavelength=1.0, space_group=96)
    with UnmergedMtzWriter(path, meta) as w:
        for r, b in zip(reversed(chunks), reversed(batches)):
            w.add(r, [b])
    assert w.nreflections == sum(len(r) for r in chunks)
    whole = MtzRecords(**{f.name: np.concatenate([getattr(r, f.name) for r in chunks[::-1]])
                          for f in dataclasses.fields(MtzRecords)})  # fmt: skip
    assert path.read_bytes() == build_unmerged_mtz(whole, batches, meta).write_to_bytes()
    assert [b.number for b in gemmi.read_mtz_file(str(path)).batches] == list(range(201, 231))
