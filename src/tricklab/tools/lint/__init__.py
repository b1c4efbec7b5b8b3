"""``tricklab lint``: recipes that train, but not the way their author thinks.

A study file can be valid and still hold a mistake the lecture makes or warns about: a Dense
layer without activation before the output layer, a regression loss on class labels, validating
on the test set, an id column among the features. :func:`lint` finds these without training
and without importing Keras (a study is linted in well under a second). Rules that need the data
(TL003, TL004, TL006, TL011, TL021, and TL010's exact list of logged names) run only when a loaded
:class:`~tricklab.data.Dataset` is passed.

Each :class:`Finding` has a code (see :data:`RULES`), a severity (``"warning"``, ``"hint"`` for
advice the lecture gives but a study may knowingly ignore, or ``"error"`` for a run that cannot
train: ``run`` and ``summary`` refuse the study, ``lint`` exits 2), the variant it concerns, the
field path as written in a study file, a message that states the rule and the received value,
and a one-line fix.

Variants. Recipe rules run on every variant's merged recipe. A finding that every variant has,
identically (typically inherited from the base recipe in ``[model]``/``[train]``), is reported
once with ``variant=None``; its line says ``all variants``. A finding only some variants have is
reported once per variant (``variants.mse: train.loss: ...``). Study-level findings (validation,
dataset, primary metric) also have ``variant=None``; their paths lie outside ``model.``/``train.``
and their lines name no variant.

Silencing. ``[lint] ignore = {TL003 = "the lecture compares losses on purpose"}`` keeps the
findings of a rule but marks them ``ignored`` with that reason; :func:`active` drops them. An
unknown code there is an error. Findings are ordered by code, then by variant order::

    spec = load_study("studies/thoracic-losses.toml")
    findings = lint(tricklab.resolve(spec))   # or lint(spec): data-free rules only
    print("\\n".join(format_findings(active(findings))))
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from tricklab.base import backend as _backend
from tricklab.base.errors import SpecError
from tricklab.data import Dataset, ResolvedStudy, resolve_study
from tricklab.spec import StudySpec
from tricklab.tools.lint._findings import (
    KERAS_DEFAULTS,
    MIN_ID_ROWS,
    RULES,
    SEVERITIES,
    Finding,
    check_ignore,
    collapse,
)
from tricklab.tools.lint._memory import available_memory, estimate, memory_finding
from tricklab.tools.lint._recipe import recipe_findings
from tricklab.tools.lint._study import study_findings

__all__ = [
    "KERAS_DEFAULTS",
    "MIN_ID_ROWS",
    "RULES",
    "SEVERITIES",
    "Finding",
    "active",
    "errors",
    "estimate",
    "format_findings",
    "lint",
    "refuse",
]


def lint(study: StudySpec | ResolvedStudy, dataset: Dataset | None = None) -> list[Finding]:
    """Every finding for ``study``, silenced ones included (with ``ignored`` set).

    ``study`` is a :class:`~tricklab.data.ResolvedStudy` (the study on its data), or a spec
    alone, when the rules that need the data are skipped (a spec and its ``dataset`` are
    resolved here). Raises :class:`SpecError` when ``[lint] ignore`` names an unknown rule
    (located in the study file, when the spec was read from one).
    """
    if isinstance(study, StudySpec) and dataset is not None:
        study = resolve_study(study, dataset, backend=_backend.name())
    resolved = study if isinstance(study, ResolvedStudy) else None
    spec = study.spec if isinstance(study, ResolvedStudy) else study
    dataset = resolved.dataset if resolved is not None else None
    check_ignore(spec.lint.ignore, spec.source)  # names the study file, if any
    findings_of_study = list(study_findings(spec, resolved))
    per_variant = [
        (name, finding)
        for name, recipe in spec.variants.items()
        for finding in recipe_findings(recipe, dataset)
    ]
    if dataset is not None:  # the memory a run needs depends on its input's shape
        available = available_memory()
        for name, recipe in spec.variants.items():
            found = memory_finding(recipe, dataset.input_shape, available)
            if found is not None:
                per_variant.append((name, found))
    findings = findings_of_study + collapse(per_variant, list(spec.variants))
    findings.sort(key=lambda f: f.code)  # stable: variant order within a code
    ignore = spec.lint.ignore
    return [replace(f, ignored=ignore[f.code]) if f.code in ignore else f for f in findings]


def active(findings: Iterable[Finding]) -> list[Finding]:
    """The findings not silenced by ``[lint] ignore``."""
    return [f for f in findings if f.ignored is None]


def errors(findings: Iterable[Finding]) -> list[Finding]:
    """The active findings that stop a study from training (TL015 above the available memory)."""
    return [f for f in active(findings) if f.severity == "error"]


def refuse(
    study: StudySpec | ResolvedStudy,
    findings: Iterable[Finding],
    consequence: str = "Nothing was trained",
) -> None:
    """Raise :class:`SpecError` (one located line per lint error) when a run cannot train:
    ``run`` and ``summary`` call this before Keras starts."""
    spec = study.spec if isinstance(study, ResolvedStudy) else study
    found = errors(findings)
    if found:
        raise SpecError(
            [
                f'{f.line()} {consequence} ([lint] ignore = {{{f.code} = "reason"}} '
                "goes on anyway)."
                for f in found
            ],
            file=spec.source,
        )


def format_findings(findings: Iterable[Finding]) -> list[str]:
    """One plain line per finding; silenced ones end with ``(ignored: <reason>)``."""
    return [
        f.line() + (f" (ignored: {f.ignored})" if f.ignored is not None else "") for f in findings
    ]
