"""cctbx merging statistics of a scaled unmerged MTZ, per resolution shell (a test helper).

Run as a script in its own process (importing cctbx and gemmi into one process crashes):
``python cctbx_merging_stats.py FILE.mtz '[[dmax, dmin], ...]'`` prints a JSON list. Rows with
FLAG != 0 (outliers) are left out, as QuickScale leaves them out of its statistics.
"""

import json
import sys

from iotbx import merging_statistics
from iotbx.reflection_file_reader import any_reflection_file

path, shells = sys.argv[1], json.loads(sys.argv[2])
arrs = any_reflection_file(path).as_miller_arrays(merge_equivalents=False)
i_obs = [a for a in arrs if a.info().labels[0] == "I"][0]
flag = [a for a in arrs if a.info().labels[0] == "FLAG"][0]
i_obs = i_obs.select(flag.data() == 0)
out = []
for dmax, dmin in shells:
    st = merging_statistics.dataset_statistics(
        i_obs=i_obs,
        n_bins=1,
        d_min=dmin,
        d_max=dmax,
        cc_one_half_significance_level=None,
        cc_one_half_method="sigma_tau",
        anomalous=False,
        use_internal_variance=False,
        eliminate_sys_absent=False,
        assert_is_not_unique_set_under_symmetry=False,
    )
    o = st.overall
    out.append(
        dict(
            r_merge=o.r_merge,
            r_meas=o.r_meas,
            r_pim=o.r_pim,
            cc_half=o.cc_one_half,
            i_over_sigma=o.i_over_sigma_mean,
            n_obs=o.n_obs,
            n_uniq=o.n_uniq,
            completeness=o.completeness * 100,
            multiplicity=o.mean_redundancy,
        )
    )
print(json.dumps(out))
