"""Goodness-of-fit measures between observed and modelled flows (TDLM definitions).

Notation: T observed, T̃ modelled, N = Σ T, Ñ = Σ T̃, over the UNION of the two supports.

- CPC (common part of commuters, Sørensen index on flows)::

      CPC = 2 Σ min(T_ij, T̃_ij) / (N + Ñ)                       in [0, 1]

  (PyTDLM computes Σ min / N, identical when Ñ = N, i.e. for PCM/ACM/DCM; the symmetric
  form is used here.)
- CPL (common part of links) = 2 |T>0 ∧ T̃>0| / (|T>0| + |T̃>0|); meaningful for sampled
  (integer) T̃ only, an averaged model is positive almost everywhere.
- CPC_d (distance distribution) = 2 Σ_k min(N_k, Ñ_k) / (N + Ñ), N_k the flow in
  [b(k-1), bk) with b = 2 km by default.
- NRMSE (TDLM) = sqrt( Σ (T - T̃)² / N ): the normaliser is N, not the number of pairs.

Sparse pairs. All functions take ALIGNED value arrays: the observed and modelled values at the
same list of pairs (a dense matrix flattened works too). :func:`align_pairs` builds that list
(the union of two supports) from ``(i, j, value)`` triples. When the model is only known at
the observed pairs (e.g. radiation at the observed links) pass its totals outside them with
``modelled_total`` (Ñ) and, for NRMSE, ``modelled_sumsq`` (Σ T̃² over all pairs): then nothing
outside the observed support needs to be materialised, and 10⁶ pairs take a few ms.
"""

from __future__ import annotations

import numpy as np

from maillage._errors import ModelError

__all__ = ["align_pairs", "cpc", "cpc_distance", "cpl", "nrmse"]


def _values(observed, modelled) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(observed, dtype=float).ravel()
    m = np.asarray(modelled, dtype=float).ravel()
    if t.shape != m.shape:
        raise ModelError(
            f"fit: observed ({t.size}) and modelled ({m.size}) values must be aligned on the "
            "same pairs; use align_pairs() first."
        )
    for name, v in (("observed", t), ("modelled", m)):
        if not np.isfinite(v).all() or (v < 0).any():
            raise ModelError(f"fit: {name} values contain NaN, infinite or negative values.")
    return t, m


def align_pairs(obs_i, obs_j, obs_value, mod_i, mod_j, mod_value):
    """Put two sparse flow lists on the union of their supports.

    Duplicated pairs inside one list are summed. Returns ``(i, j, observed, modelled)`` with
    zeros where a pair is absent from one side. Cost O((n_obs + n_mod) log).
    """
    oi, oj = np.asarray(obs_i, np.int64), np.asarray(obs_j, np.int64)
    mi, mj = np.asarray(mod_i, np.int64), np.asarray(mod_j, np.int64)
    ov, mv = np.asarray(obs_value, float), np.asarray(mod_value, float)
    if not (oi.shape == oj.shape == ov.shape and mi.shape == mj.shape == mv.shape):
        raise ModelError("align_pairs: i, j and value must have the same length on each side.")
    width = int(max(oi.max(initial=0), oj.max(initial=0), mi.max(initial=0), mj.max(initial=0)))
    width += 1
    keys = np.concatenate([oi * width + oj, mi * width + mj])
    uniq, inv = np.unique(keys, return_inverse=True)
    t = np.bincount(inv[: oi.size], weights=ov, minlength=uniq.size)
    m = np.bincount(inv[oi.size :], weights=mv, minlength=uniq.size)
    return uniq // width, uniq % width, t, m


def cpc(observed, modelled, *, modelled_total: float | None = None) -> float:
    """Common part of commuters, 2 Σ min(T, T̃) / (N + Ñ).

    ``modelled_total`` overrides Ñ when the model has mass outside the given pairs.
    Two empty flow sets give 1 (identical).
    """
    t, m = _values(observed, modelled)
    n_obs = t.sum()
    n_mod = m.sum() if modelled_total is None else float(modelled_total)
    if n_obs + n_mod <= 0:
        return 1.0
    return float(2.0 * np.minimum(t, m).sum() / (n_obs + n_mod))


def cpl(observed, modelled, *, modelled_links: int | None = None) -> float:
    """Common part of links, 2 |T>0 ∧ T̃>0| / (|T>0| + |T̃>0|).

    ``modelled_links`` overrides |T̃>0| when the model has links outside the given pairs.
    """
    t, m = _values(observed, modelled)
    common = int(np.count_nonzero((t > 0) & (m > 0)))
    n_obs = int(np.count_nonzero(t > 0))
    n_mod = int(np.count_nonzero(m > 0)) if modelled_links is None else int(modelled_links)
    if n_obs + n_mod == 0:
        return 1.0
    return 2.0 * common / (n_obs + n_mod)


def cpc_distance(observed, modelled, distance_km, *, bin_km: float = 2.0) -> float:
    """CPC of the distance distributions, 2 Σ_k min(N_k, Ñ_k) / (N + Ñ), bins of ``bin_km``."""
    t, m = _values(observed, modelled)
    d = np.asarray(distance_km, dtype=float).ravel()
    if d.shape != t.shape or not np.isfinite(d).all() or (d < 0).any():
        raise ModelError("cpc_distance: distances must be finite, non-negative, aligned.")
    k = np.floor(d / bin_km).astype(np.int64)
    nk_obs = np.bincount(k, weights=t)
    nk_mod = np.bincount(k, weights=m, minlength=nk_obs.size)
    nk_obs = np.pad(nk_obs, (0, nk_mod.size - nk_obs.size))
    total = t.sum() + m.sum()
    if total <= 0:
        return 1.0
    return float(2.0 * np.minimum(nk_obs, nk_mod).sum() / total)


def nrmse(observed, modelled, *, modelled_sumsq: float | None = None) -> float:
    """TDLM's normalised RMSE, sqrt( Σ (T - T̃)² / N ).

    ``modelled_sumsq`` is Σ T̃² over ALL modelled pairs, when the model has mass outside the
    given pairs: the missing part Σ_outside T̃² is added.

    Raises
    ------
    ModelError
        When N = 0 (nothing observed to normalise by).
    """
    t, m = _values(observed, modelled)
    n_obs = t.sum()
    if n_obs <= 0:
        raise ModelError("nrmse: the observed flows sum to zero; NRMSE is undefined.")
    sq = float(np.square(t - m).sum())
    if modelled_sumsq is not None:
        sq += max(float(modelled_sumsq) - float(np.square(m).sum()), 0.0)
    return float(np.sqrt(sq / n_obs))
