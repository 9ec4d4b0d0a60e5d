"""Readers of MOSFLM's log modelled on how pipelines parse it (issue 10).

Each rule takes the same tokens, at the same positions, as xia2's MOSFLM wrappers
(``Wrappers/Mosflm/MosflmIndex.py``, ``MosflmRefineCell.py``, ``MosflmIntegrate.py`` and
``Wrappers/CCP4/MosflmHelpers.py``, xia2 up to 2.0): lines are found by a fixed phrase, split
on blanks and read by token index, or sliced at fixed columns.  The tests run these readers on
the real MOSFLM logs (so the rules are known to be right) and on mosflm-py's log (so a pipeline
reads ours unchanged).  Written here from the descriptions of those parsers, not copied.
"""

from __future__ import annotations


def parse_index(lines: list[str]) -> dict:
    """AUTOINDEX run: solutions table, chosen solution, refined cell, beam, mosaic, ..."""
    out: dict = {"solutions": {}, "mosaic": [], "chosen": 0}
    collect = False
    for o in lines:
        if "No PENALTY SDCELL" in o:
            collect = not collect
        if collect:
            try:
                number = int(o.split()[0])
            except (ValueError, IndexError):
                pass
            else:
                out["solutions"][number] = o
        if "Suggested Solution" in o:
            out["chosen"] = int(o.split()[2])
        if "Mosflm has chosen solution" in o:
            out["chosen"] = int(o.split()[4])
        if "Solution" in o and "has been chosen from the list" in o:
            out["chosen"] = int(o.split()[1])
        if "Final cell (after refinement)" in o:
            out["cell"] = tuple(map(float, o.split()[-6:]))
        if "Beam coordinates of" in o:
            out["beam"] = tuple(map(float, o.split()[-2:]))
        if "Symmetry:" in o:
            out["lattice"] = o.split(":")[1].split()[0]
        if "Refining solution #" in o:
            out["space_group_number"] = int(o.split(")")[0].split()[-1])
        if "The mosaicity has been estimated" in o:
            out["mosaic"].append(float(o.split(">")[1].split()[0]))
        if "Crystal to detector distance of" in o:
            out["distance"] = float(o.split()[5].replace("mm", ""))
        if "parameters have been set to" in o:
            out["raster"] = list(map(int, o.split()[-5:]))
        if "(currently SEPARATION" in o:
            out["separation"] = list(map(float, o.replace(")", "").split()[-2:]))
        if "99% have resolution" in o:
            out["resolution_estimate"] = float(o.split()[-2])
    refined = {}
    for k, text in out["solutions"].items():
        if "unrefined" in text:
            continue
        tok = text.split()
        # xia2's AutoindexHelpers.index_solution: int(tokens[1]) (penalty), floats after
        refined[k] = {"penalty": int(tok[1]), "rms": float(tok[2]), "frc": float(tok[3]),
                      "lattice": tok[4], "cell": tuple(map(float, tok[5:11]))}
    out["refined"] = refined
    return out


def _table_last_row_mean(lines: list[str], i: int) -> float:
    j = i + 1
    while lines[j].strip() != "":
        j += 1
    values = list(map(float, lines[j - 1].split()[2:]))
    return sum(values) / len(values)


def parse_cellref(lines: list[str]) -> dict:
    """Cell refinement run (POSTREF MULTI SEGMENT n, PROCESS + GO per segment)."""
    out: dict = {"ok": any("Cell refinement is complete" in o for o in lines)}
    new_cycle = 0
    new_rms: dict[int, dict[int, float]] = {}
    image = None
    for i, o in enumerate(lines):
        if "Processing will be aborted" in o or "An unrecoverable error has occurred" in o:
            out["aborted"] = True
        if "Processing Image" in o:
            image = int(o.split()[2])
        if "Post-refinement will use partials" in o:
            new_cycle += 1
            new_rms[new_cycle] = {}
        if "Final rms residual" in o:
            # a KeyError here is what xia2 hits if the cycle marker above is missing
            new_rms[new_cycle][image] = float(o.replace("mm", " ").split()[3])
        if "Rms positional error (mm) as a function of" in o:
            images: list[int] = []
            rms: dict[int, list[float]] = {}
            j = i + 1
            while lines[j].split():
                if "Image" in lines[j]:
                    images += list(map(int, lines[j].replace("Image", "").split()))
                else:
                    cycle = int(lines[j].replace("Cycle", "").split()[0])
                    fields = [lines[j][k:k + 6] for k in range(11, len(lines[j]), 6)]
                    rms[cycle] = [float(f) for f in fields if f.strip()]
                j += 1
            out["rms_images"], out["rms_table"] = images, rms
        if "Cell refinement is complete" in o:
            out["refined_cell_2"] = tuple(map(float, lines[i + 2].split()[2:]))
            out["cell_errors"] = tuple(map(float, lines[i + 3].split()[1:]))
        if "Refined cell" in o:
            out["cell"] = tuple(map(float, o.split()[-6:]))
        if "Detector distance as a" in o:
            out["distance"] = _table_last_row_mean(lines, i)
        if "YSCALE as a function" in o:
            out["yscale"] = _table_last_row_mean(lines, i)
        if "Final optimised raster parameters:" in o:
            out["raster"] = o.split(":")[1].strip()
        if "Separation parameters updated to" in o:
            tok = o.replace("mm", " ").split()
            out["separation"] = (float(tok[4]), float(tok[8]))
        if "Background residual" in o:
            out.setdefault("background_residual", []).append(
                float(o.replace("residual=", "").split()[8]))
        if "XCEN    YCEN  XTOFRA" in o:
            num = lines[i + 1].split()
            out["beam"] = (float(num[0]), float(num[1]))
            out["distance_xtofd"] = float(num[3])
            out["tilt_twist"] = (int(num[5]), int(num[6]))
        if "Refined mosaic spread" in o:
            out["mosaic"] = float(o.split()[-1])
    out["rms_per_cycle"] = new_rms
    return out


def parse_integrate(lines: list[str]) -> dict:
    """Integration run: MTZ name and size, images, mosaic, per-image statistics."""
    out: dict = {"mosaics": [], "first": None, "last": None, "per_image": {}}
    pixel = 0.0
    current = 0
    stats: dict[int, dict] = {0: {}}
    for i, o in enumerate(lines):
        if "Integrating Image" in o:
            n = int(o.split()[2])
            out["first"] = n if out["first"] is None else min(out["first"], n)
            out["last"] = n if out["last"] is None else max(out["last"], n)
            current = n
        if "Smoothed value for refined mosaic" in o:
            out["mosaics"].append(float(o.split()[-1]))
            stats[current]["mosaic"] = float(o.split()[-1])
        if "WRITTEN OUTPUT MTZ FILE" in o:
            out["hklout"] = lines[i + 1].split()[-1]
        if "Number of Reflections" in o:
            out["nref"] = int(o.split()[-1])
        if "MOSFLM HAS TERMINATED EARLY" in o:
            out["terminated"] = True
        if "Pixel size of" in o:
            pixel = float(o.replace("mm", " ").split()[3])
        if "Processing Image" in o:
            current = int(o.split()[2])
            stats.setdefault(current, {"scale": 1.0})
        if "XCEN    YCEN  XTOFRA   XTOFD" in o:
            data = list(map(float, lines[i + 1].split()))
            stats[current]["beam"] = (data[0], data[1])
            stats[current]["distance"] = data[3]
        if "Final rms residual:" in o:
            stats[current]["rmsd_pixel"] = float(o.replace("mm", " ").split()[3]) / pixel
            stats[current]["weighted_residual"] = float(o.split()[-1])
        if "Real cell parameters" in o:
            stats[current]["cell"] = list(map(float, lines[i + 1].split()))
        if "Spots measured on this image" in o:
            stats[current]["strong"] = int(o.split()[0])
        if "are OVERLOADS" in o:
            stats[current]["overloads"] = int(o.replace(",", " ").split()[4])
        if "Number of bad spots" in o:
            stats[current]["rejected"] = int(o.replace("=", "").split()[-1])
        if "Analysis as a function of resolution." in o and "Maximum Intensity" in lines[i - 3]:
            res = list(map(float, lines[i + 1].split()[2:-1]))
            nfull = list(map(int, lines[i + 3].replace("Number", "").split()[:-1]))
            sfull = list(map(float, lines[i + 6].replace("<I/sigma>", "").split()[:-1]))
            npart = list(map(int, lines[i + 8].replace("Number", "").split()[:-1]))
            spart = list(map(float, lines[i + 11].replace("<I/sigma>", "").split()[:-1]))
            assert len(res) == len(nfull) == len(sfull) == len(npart) == len(spart)
            stats[current]["resolution_bins"] = res
            stats[current]["i_sigma"] = [
                (nf * sf + n_p * sp) / (nf + n_p) if nf + n_p else 0.0
                for nf, sf, n_p, sp in zip(nfull, sfull, npart, spart)]
    stats.pop(0, None)
    out["per_image"] = stats
    return out


def parse_summary(text: str) -> dict:
    """SUMMARY file as xia2 reads it: exactly two loggraph tables (nine pieces on ``$$``)."""
    tokens = text.split("$$")
    assert len(tokens) == 9, f"{len(tokens)} pieces on $$, expected 9 (two tables)"
    out = {}
    for name, head, data in (("detector", 1, 3), ("postref", 5, 7)):
        columns = tokens[head].split()
        values = [float(v) for v in tokens[data].replace("******", " 0.0 ").split()]
        ncol = len(columns)
        assert len(values) % ncol == 0
        rows = {}
        for j in range(len(values) // ncol):
            image = int(round(values[j * ncol]))
            rows[image] = {columns[k].lower(): values[j * ncol + k] for k in range(1, ncol)}
        out[name] = rows
        out[name + "_columns"] = columns
    return out
