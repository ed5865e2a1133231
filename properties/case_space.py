"""The case space each oracle check covers: a main draw and coverage phases, per profile.

A check of a module, cell or numpy target draws its cases in two parts:

- the **main** draw (the profile's number of cases): small cases — T ≤ 6, at most two layers,
  sizes ≤ 4 — over every option of the group (hx given or not, ``batch_first``, sorted and
  unsorted lengths in a packed group, the σ_max regimes), so that a bug visible in a small
  case is found there and shrinks to the smallest one;
- the **coverage phases**, run after the main draw passes, each a few cases of one region that
  the main draw never reaches and where whole classes of bugs live only:

=============  =====================================================  ====  ====  ========
phase          what it draws                                          dev   ci    thorough
=============  =====================================================  ====  ====  ========
deep           3-4 layers (critical W_hh)                             1     3     10
saturated      median |pre-activation| 15-40 (expansive W_hh)         1     3     10
overflow       |x| ~ 1e3 (contractive W_hh)                           1     3     10
expansive      γ·σ_max(W_hh) ∈ [1.2, 2.5], T = 16-50 (float64 only)   1     1     10
unbatched      torch's (T, D) / (D,) input form (module, cell)        1     3     10
sorted         packed, lengths sorted, ``enforce_sorted=True``        1     1     10
unsorted       packed, unequal lengths in batch order                 1     1     10
long           T = 65-100 (dev), 200-256 (ci), 200-500 (thorough)     1     2     3
very long      T = 2000 (thorough only)                               —     —     1
=============  =====================================================  ====  ====  ========

A group runs only its own options: every case of the ``packed`` group is a PackedSequence
(unequal lengths wherever B ≥ 2 in the phases), every case of ``proj_size`` projects, every
case of a bidirectional group is bidirectional. The unbatched phase exists for the module and
cell kinds (the numpy protocol has no unbatched form) in groups without packing. Float32 and
coarser cases stay contractive (SPEC §8: in the chaotic regime no float32 tolerance is
meaningful), so their expansive phase is left out and the other phases draw γ·σ_max < 1. Long
cases draw contractive or critical W_hh only: at T = 2000 an expansive recurrence overflows
float64 itself (a relu state grows as (γσ)^T, a tanh gradient as its Lyapunov exponent).

Each phase shrinks within its region (a long case to the shortest T of the phase, a deep one
to three layers), so a failure there is reported on the smallest case that still shows it.
The profile's name may carry the oracle's prefix (``bpttcheck-ci``); an unknown one (a
project's own) gets the ``ci`` numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from bpttcheck.reference import GAMMA
from bpttcheck.reference.cells import cell_spec

from .strategies import cases, configs

__all__ = ["PHASE_EXAMPLES", "VERY_LONG", "CaseSpace", "Phase", "gamma_sigma", "long_range", "profile_key"]

#: cases per coverage phase, per profile
PHASE_EXAMPLES = {
    "dev": dict(deep=1, saturated=1, overflow=1, expansive=1, unbatched=1, sorted=1, unsorted=1, long=1),
    "ci": dict(deep=3, saturated=3, overflow=3, expansive=1, unbatched=3, sorted=1, unsorted=1, long=2),
    "thorough": dict(deep=10, saturated=10, overflow=10, expansive=10, unbatched=10, sorted=10, unsorted=10,
                     long=3, very_long=1),
}
_LONG = {"dev": (65, 100), "ci": (200, 256), "thorough": (200, 500)}
VERY_LONG = 2000


def profile_key(profile: str) -> str:
    """``"ci"`` for ``"ci"`` or ``"bpttcheck-ci"``; ``"ci"`` for a profile this table does not know."""
    name = str(profile or "")
    name = name[len("bpttcheck-"):] if name.startswith("bpttcheck-") else name
    return name if name in PHASE_EXAMPLES else "ci"


def long_range(profile: str) -> tuple[int, int]:
    """(min T, max T) of the long phase under ``profile``."""
    return _LONG[profile_key(profile)]


@dataclass(frozen=True)
class Phase:
    """One coverage phase: a label for reports, its strategy and how many cases it draws."""

    label: str
    strategy: object
    max_examples: int


@dataclass(frozen=True)
class CaseSpace:
    """The cases of one check: ``main()`` and ``coverage(profile)``.

    ``bidirectional``/``proj``: True forces the option, False forbids it, None draws it;
    ``packed``: every case is a PackedSequence (else none is); ``unbatched``: the kind takes
    torch's unbatched form; ``max_layers``/``deep``: the layers of the main draw and whether
    the deep phase exists (a cell is one layer); ``float64``: whether the comparison is in
    float64 (else every case is contractive); ``batch_first``: None draws it.
    """

    cell: str
    bidirectional: bool | None = False
    proj: bool | None = False
    packed: bool = False
    unbatched: bool = False
    max_layers: int = 2
    deep: bool = True
    float64: bool = True
    batch_first: bool | None = None
    activations: tuple = ("tanh", "relu")

    # ------------------------------------------------------------------ pieces

    def _configs(self, **kw):
        kw.setdefault("max_layers", self.max_layers)
        return configs(cells=(self.cell,), activations=self.activations, bidirectional=self.bidirectional,
                       proj=self.proj, **kw)

    def _regime(self, wanted):
        """``wanted`` where float64 comparisons are made, else contractive (SPEC §8)."""
        if not self.float64:
            return "contractive"
        return wanted

    def _cases(self, conf, **kw):
        kw.setdefault("batch_first", self.batch_first)
        if self.packed:
            kw.setdefault("lengths", True)
        else:
            kw["lengths"] = False
        return cases(conf, **kw)

    # ------------------------------------------------------------------ the two parts

    def main(self):
        """The main draw: small cases over every option of the group."""
        if not self.float64:
            return self._cases(self._configs(), regime="contractive", max_T=8)
        return self._cases(self._configs(), regime=(None, "contractive", "critical", "expansive"))

    def coverage(self, profile: str = "ci") -> list[Phase]:
        """The coverage phases under ``profile`` (see the module docstring's table)."""
        key = profile_key(profile)
        n = PHASE_EXAMPLES[key]
        packed = dict(unequal_lengths=True, min_B=2) if self.packed else {}
        phases = []
        if self.deep:
            phases.append(Phase("deep (3-4 layers)", self._cases(
                self._configs(min_layers=3, max_layers=4, max_size=3), max_B=2, max_T=6,
                regime=self._regime("critical"), **packed), n["deep"]))
        phases.append(Phase("saturated pre-activations (|a| > 10)", self._cases(
            self._configs(), min_T=2, max_T=12, magnitude="saturated", regime=self._regime("expansive"), **packed),
            n["saturated"]))
        phases.append(Phase("overflow-prone inputs (|x| ~ 1e3)", self._cases(
            self._configs(), min_T=2, max_T=12, magnitude="overflow", regime="contractive", **packed),
            n["overflow"]))
        if self.float64:
            phases.append(Phase("expansive W_hh (γ·σ_max > 1, T = 16-50)", self._cases(
                self._configs(max_size=3), min_T=16, max_T=50, max_B=2, regime="expansive", **packed),
                n["expansive"]))
        if self.unbatched and not self.packed:
            phases.append(Phase("unbatched input", self._cases(
                self._configs(), max_T=8, unbatched=True, regime=self.main_regimes()), n["unbatched"]))
        if self.packed:
            for label, ordered in (("sorted", True), ("unsorted", False)):
                phases.append(Phase(f"PackedSequence, {label} unequal lengths", self._cases(
                    self._configs(), min_T=2, max_T=8, min_B=2, max_B=4, unequal_lengths=True,
                    sorted_lengths=ordered, regime=self.main_regimes()), n[label]))
        lo, hi = _LONG[key]
        long_regimes = ("critical", "contractive") if self.float64 else "contractive"
        phases.append(Phase(f"long sequences (T = {lo}-{hi})", self._cases(
            self._configs(max_layers=min(2, self.max_layers), min_size=2, max_size=3), min_T=lo, max_T=hi,
            min_B=2 if self.packed else 1, max_B=2, regime=long_regimes, **({"unequal_lengths": True} if self.packed else {})),
            n["long"]))
        if n.get("very_long"):
            phases.append(Phase(f"very long sequences (T = {VERY_LONG})", self._cases(
                self._configs(max_layers=1, min_size=2, max_size=2), min_T=VERY_LONG, max_T=VERY_LONG,
                min_B=2 if self.packed else 1, max_B=2, regime=long_regimes,
                **({"unequal_lengths": True} if self.packed else {})), n["very_long"]))
        return phases

    def main_regimes(self):
        return (None, "contractive", "critical", "expansive") if self.float64 else "contractive"


def gamma_sigma(case) -> float | None:
    """γ·σ_max(W_hh) of a case, or None for torch's default init (for reports and tests)."""
    if case.sigma_max is None:
        return None
    spec = cell_spec(case.config.cell)
    return float(case.sigma_max * (GAMMA[case.config.nonlinearity] if spec.takes_nonlinearity else 1.0))
