"""Ensembles of photo-z estimators: committees and bagging.

``photoz.committee``
--------------------
In the spirit of ANNz (Sadeh, Abdalla & Lahav 2016): several photo-z stages
are trained on the same rows and combined.  The weights are those of the
mixture that best predicts the held-out validation rows, i.e. they maximise
``sum_i log sum_k w_k f_k,i(z_true,i)`` (found by EM; "stacking" of
predictive densities, Yao et al. 2018), so a member that adds nothing gets a
weight near zero.  Each member keeps its own PDF settings and recalibration;
the committee's mixture is then recalibrated once more like any photo-z
stage.  Members are declared in the pipeline file::

    - name: photoz
      uses: photoz.committee
      with:
        members:
          - {uses: photoz.catboost}
          - {uses: photoz.random_forest, with: {n_estimators: 200}}

Besides the usual outputs, ``<prefix>_members`` holds each member's point
estimate (same ``point_estimate``), for comparing them.

``photoz.bagging``
------------------
Bootstrap aggregation (Breiman 1996) of any photo-z stage: ``n_bags`` copies
are trained on bootstrap resamples of the training rows (each with its own
seed), and the PDF is their average.  ``<prefix>_spread`` is the standard
deviation of the copies' point estimates: how much the estimate depends on
the particular training sample::

    - name: photoz
      uses: photoz.bagging
      with: {member: {uses: photoz.catboost}, n_bags: 5}

The copies of a row drawn more than once form one group (``fit(groups=...)``):
each copy trains on all of them or holds all of them out, never some of each,
so that its held-out rows are ones it has not learnt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
from astropy.table import Table

from astroml_pipe.core.columns import Col
from astroml_pipe.core.errors import ConfigError, ModelError
from astroml_pipe.core.params import Param
from astroml_pipe.core.registry import get_stage_class
from astroml_pipe.stages.photoz.base import COMMON_PARAMS, DENSITY_FLOOR, PhotoZStage
from astroml_pipe.stages.photoz.pdf import interpolate_rows, summarize

__all__ = ["BaggingPhotoZ", "CommitteePhotoZ", "mixture_weights"]

#: Parameters a committee passes on to every member (so that they agree).
SHARED = ("target", "features", "reference_band", "use_errors", "pdf_grid", "validation_fraction", "random_state")


class _MemberOutputs:
    """Raw outputs of the members, sliceable by rows like one array."""

    def __init__(self, parts: list[Any]):
        self.parts = parts

    def __getitem__(self, rows: slice) -> "_MemberOutputs":
        return _MemberOutputs([part[rows] for part in self.parts])


def mixture_weights(densities: np.ndarray, iterations: int = 200) -> np.ndarray:
    """EM weights of the mixture that maximises the mean log density at the truths.

    Parameters
    ----------
    densities : numpy.ndarray
        ``(n_objects, n_members)`` density of each member's PDF at each true
        redshift.
    """
    f = np.maximum(densities, DENSITY_FLOOR)
    w = np.full(f.shape[1], 1.0 / f.shape[1])
    for _ in range(iterations):
        r = f * w
        r /= r.sum(axis=1, keepdims=True)
        new = r.mean(axis=0)
        if np.abs(new - w).max() < 1e-7:
            return new
        w = new
    return w


class CommitteePhotoZ(PhotoZStage):
    """Photometric redshifts from a committee of photo-z stages, weighted by how well each predicts held-out rows."""

    name = "photoz.committee"
    params = COMMON_PARAMS + (
        Param(
            "members",
            list,
            [{"uses": "photoz.catboost"}, {"uses": "photoz.random_forest"}],
            "Member stages: a list of {uses: <photo-z stage>, with: {parameters}}.",
        ),
    )

    def validate(self) -> None:
        super().validate()
        if len(self.members) < 2:
            raise ConfigError(f"{self.where}: parameter 'members' needs at least two stages")
        self._members = [self._make_member(k, spec) for k, spec in enumerate(self.members)]

    def _make_member(self, index: int, spec: Any) -> PhotoZStage:
        if not isinstance(spec, Mapping) or not isinstance(spec.get("uses"), str) or set(spec) - {"uses", "with"}:
            raise ConfigError(f"{self.where}: member #{index + 1} must be {{uses: <stage>, with: {{...}}}}, got {spec!r}")
        cls = get_stage_class(spec["uses"])
        if not issubclass(cls, PhotoZStage) or cls is CommitteePhotoZ:
            raise ConfigError(f"{self.where}: member #{index + 1} ({spec['uses']}) is not a photo-z estimator")
        given = dict(spec.get("with") or {})
        clash = sorted(set(given) & set(SHARED))
        if clash:
            raise ConfigError(f"{self.where}: member #{index + 1} may not set {clash}; set them on the committee")
        if given.get("pretrain") is not None:
            raise ConfigError(f"{self.where}: member #{index + 1} may not set 'pretrain': only a photo-z stage of "
                              "its own in the pipeline is given the simulated rows")
        shared = {key: getattr(self, key) for key in SHARED}
        return cls(columns=self.columns, label=f"{self.label}/member{index + 1}", **shared, **given)

    def provides(self) -> list[Col]:
        return super().provides() + [
            Col(f"{self.prefix}_members", "", "float32", f"{self.point_estimate} of each member's PDF, in member order",
                shape=(len(self.members),)),
        ]

    # -- learning ------------------------------------------------------------------
    def _fit_model(self, X: np.ndarray, y: np.ndarray) -> None:
        features = self.feature_columns()
        table = Table({name: X[:, j] for j, name in enumerate(features)})
        table[self.target] = y
        for index, member in enumerate(self._members):
            rows = self._training_rows(len(table), index)
            if rows is None:
                member.fit(table, groups=self._groups)
            else:  # a row drawn twice stays one group, so the member never holds out a row it trains on
                member.fit(table[rows], groups=rows if self._groups is None else self._groups[rows])
        self.member_weights_ = np.full(len(self._members), 1.0 / len(self._members))

    def _training_rows(self, n: int, index: int) -> np.ndarray | None:
        """Indices of the rows (of ``n``) that member ``index`` learns from; None: all of them, as in a committee."""
        return None

    def _pdf_candidates(self) -> list[dict[str, float]]:
        return [{}]

    def _default_pdf_settings(self) -> dict[str, float]:
        return {}

    def _choose_pdf_settings(self, raw: _MemberOutputs, z_true: np.ndarray) -> dict[str, float]:
        densities = np.column_stack(
            [interpolate_rows(self.grid, self._member_pdf(k, part), z_true) for k, part in enumerate(raw.parts)]
        )
        self.member_weights_ = mixture_weights(densities)
        return {}

    # -- applying --------------------------------------------------------------------
    def _member_pdf(self, index: int, raw: Any) -> np.ndarray:
        member = self._members[index]
        pdf = member._pdf_from_raw(raw, **member.pdf_settings_)
        if member.recalibration_ is not None:
            pdf = member.recalibration_.apply(member.grid, pdf)
        return pdf

    def _predict_raw(self, X: np.ndarray) -> _MemberOutputs:
        return _MemberOutputs([member._predict_raw(X) for member in self._members])

    def _pdf_from_raw(self, raw: _MemberOutputs, **_: float) -> np.ndarray:
        mixture = None
        for k, part in enumerate(raw.parts):
            pdf = self._member_pdf(k, part)
            pdf *= np.float32(self.member_weights_[k])
            mixture = pdf if mixture is None else mixture + pdf
        return mixture

    def _block_extras(self, raw: _MemberOutputs) -> dict[str, np.ndarray]:
        estimates = [summarize(self.grid, self._member_pdf(k, part))[self.point_estimate] for k, part in enumerate(raw.parts)]
        return {f"{self.prefix}_members": np.column_stack(estimates)}

    # -- persistence -----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "member_weights_": self.member_weights_.tolist()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.member_weights_ = np.asarray(state["member_weights_"], dtype=float)

    def save_artifacts(self, folder: Path) -> None:
        for k, member in enumerate(self._members):
            member.save(folder / f"member{k + 1}")

    def load_artifacts(self, folder: Path) -> None:
        loaded = []
        for k, member in enumerate(self._members):
            path = folder / f"member{k + 1}"
            if not path.is_dir():
                raise ModelError(f"committee folder '{folder}' has no {path.name}")
            loaded.append(type(member).load(path, columns=self.columns, label=member.label))
        self._members = loaded


class BaggingPhotoZ(CommitteePhotoZ):
    """Bagging: copies of one photo-z stage trained on bootstrap resamples, their PDFs averaged."""

    name = "photoz.bagging"
    params = COMMON_PARAMS + (
        Param("member", dict, {"uses": "photoz.catboost"}, "The stage to bag: {uses: <photo-z stage>, with: {parameters}}."),
        Param("n_bags", int, 5, "Number of bootstrap copies.", minimum=2),
    )

    def validate(self) -> None:
        PhotoZStage.validate(self)
        self.members = [self.member] * self.n_bags
        base_seed = 0 if self.random_state is None else self.random_state
        self._members = []
        for index in range(self.n_bags):
            member = self._make_member(index, self.member)
            member.random_state = base_seed + 1000 * (index + 1)  # each copy its own trees and splits
            self._members.append(member)

    def provides(self) -> list[Col]:
        return super().provides() + [
            Col(f"{self.prefix}_spread", "", "float32", f"standard deviation of the bagged copies' {self.point_estimate}"),
        ]

    def _training_rows(self, n: int, index: int) -> np.ndarray:
        rng = np.random.default_rng(self._members[index].random_state)
        return rng.integers(0, n, n)

    def _choose_pdf_settings(self, raw: _MemberOutputs, z_true: np.ndarray) -> dict[str, float]:
        return {}  # plain average: equal weights

    def _block_extras(self, raw: _MemberOutputs) -> dict[str, np.ndarray]:
        extras = super()._block_extras(raw)
        extras[f"{self.prefix}_spread"] = extras[f"{self.prefix}_members"].std(axis=1)
        return extras
