"""Spatial-interaction models, fit measures and functional territories (pure computations).

Room ``maillage/models``: numpy/scipy (+ igraph/leidenalg) only; no I/O, no settings, no
database. Semantics follow Lenormand, Bassolas & Ramasco (2016) and their TDLM package.

- :mod:`~maillage.models.laws` — distances, tie-inclusive s_ij, the laws' p_ij (dense);
- :mod:`~maillage.models.radiation` — radiation at given pairs (sub-n²), dense, streamed or
  truncated sparse over all pairs (numba kernels);
- :mod:`~maillage.models.constrained` — UM / PCM / ACM / DCM (Furness), sparse kernels;
- :mod:`~maillage.models.fit` — CPC, CPL, CPC_d, NRMSE on aligned sparse pairs;
- :mod:`~maillage.models.calibrate` — CPC maximisation, published β scaling;
- :mod:`~maillage.models.ties` — observed/expected ratios, Pearson residuals;
- :mod:`~maillage.models.functional` — AAV rule, Leiden, TTWA, comparison with EPCI;
- :mod:`~maillage.models.default` — the national embedded-default commuting estimate.
"""

from maillage.models.calibrate import Calibration, beta_from_surface, calibrate_law, maximise
from maillage.models.constrained import (
    MODELS,
    Balanced,
    attraction_constrained,
    doubly_constrained,
    production_constrained,
    run_model,
    sample_flows,
    truncated_kernel,
    unconstrained,
)
from maillage.models.default import estimate_commute, intra_distance_km
from maillage.models.fit import align_pairs, cpc, cpc_distance, cpl, nrmse
from maillage.models.functional import (
    Communities,
    PerimeterComparison,
    aav_couronnes,
    compare_with_perimeters,
    leiden_communities,
    travel_to_work_areas,
    ttwa_validity,
)
from maillage.models.laws import (
    LAWS,
    ModelWarning,
    deterrence,
    distance_matrix,
    haversine_km,
    law_weights,
    opportunities,
    project_km,
)
from maillage.models.radiation import (
    opportunities_at_pairs,
    radiation_at_pairs,
    radiation_dense,
    radiation_row_blocks,
    radiation_sparse,
)
from maillage.models.ties import surprising_ties, tie_strength

__all__ = [
    "LAWS",
    "MODELS",
    "Balanced",
    "Calibration",
    "Communities",
    "ModelWarning",
    "PerimeterComparison",
    "aav_couronnes",
    "align_pairs",
    "attraction_constrained",
    "beta_from_surface",
    "calibrate_law",
    "compare_with_perimeters",
    "cpc",
    "cpc_distance",
    "cpl",
    "deterrence",
    "distance_matrix",
    "doubly_constrained",
    "estimate_commute",
    "haversine_km",
    "intra_distance_km",
    "law_weights",
    "leiden_communities",
    "maximise",
    "nrmse",
    "opportunities",
    "opportunities_at_pairs",
    "production_constrained",
    "project_km",
    "radiation_at_pairs",
    "radiation_dense",
    "radiation_row_blocks",
    "radiation_sparse",
    "run_model",
    "sample_flows",
    "surprising_ties",
    "tie_strength",
    "travel_to_work_areas",
    "truncated_kernel",
    "ttwa_validity",
    "unconstrained",
]
