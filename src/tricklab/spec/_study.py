"""A whole study: the base recipe, its variants, the data, the seeds and the protocol.

A study is a base recipe (``[model]`` and ``[train]``), named variants that override it (or a
grid of them), a dataset and seeds, or cross-validation folds x repeats. :func:`load_study` reads
and validates a study file; every error names the file and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import tomli
from annotated_types import Ge
from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator

from tricklab.base.errors import SpecError, not_utf8
from tricklab.spec import _builder, _grid, _limits, _merge, _validation
from tricklab.spec._dataset import DatasetSpec, parse_dataset
from tricklab.spec._limits import LimitsSpec
from tricklab.spec._recipe import (
    MAX_EPOCHS,
    BuilderBinding,
    ModelSpec,
    NonNegInt,
    PosInt,
    Recipe,
    TrainSpec,
    _Spec,
)


def _seeds(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise _validation.own_error(
                f"must be a number of seeds >= 1 or a list of seeds. Received: seeds={value}."
            )
        return tuple(range(value))
    if isinstance(value, list | tuple):
        bad = [s for s in value if not isinstance(s, int) or isinstance(s, bool) or s < 0]
        if bad or not value or len(set(value)) != len(value):
            raise _validation.own_error(
                "must be a number of seeds >= 1 or a list of distinct ints >= 0. "
                f"Received: seeds={_validation.show(value)}."
            )
        return tuple(value)
    raise _validation.own_error(
        "must be a number of seeds >= 1 or a list of distinct ints >= 0. "
        f"Received: seeds={_validation.show(value)}."
    )


def _dataset(value: Any) -> Any:
    try:
        return parse_dataset(value)
    except SpecError as exc:
        raise _validation.own_error("; ".join(exc.problems)) from None


def _validation_choice(value: Any) -> Any:
    if value == "test":
        return value
    if isinstance(value, float | int) and not isinstance(value, bool) and 0 < value < 1:
        return float(value)
    raise _validation.own_error(
        'must be a fraction of the training data in (0, 1), or "test" to validate on the '
        f"test set as the lecture does. Received: validation={_validation.show(value)}."
    )


class DiagnosticsSpec(_Spec):
    """Per-layer training diagnostics (:mod:`tricklab.engines.diagnostics`); ``true``: defaults."""

    batch_size: PosInt = 256  # validation samples the statistics are computed on
    every: PosInt = 1  # epochs between measurements


def _diagnostics(value: Any) -> Any:
    if value is True:
        return DiagnosticsSpec()
    if value is False:
        return None
    return value


class CvSpec(_Spec):
    """Repeated stratified k-fold: repeat r draws its folds, and trains its models, with seed r."""

    folds: Annotated[int, Ge(2)] = 5
    repeats: PosInt = 2


class LintSpec(_Spec):
    """Rules this study breaks on purpose: ``ignore = {CODE = "reason"}``."""

    ignore: dict[str, str] = Field(default_factory=dict)


class StudySpec(_Spec):
    """A whole study: the base recipe, its variants, the data and the seeds.

    Build one with :meth:`from_file` / :func:`load_study` or :meth:`from_dict`.
    """

    name: str
    description: str = ""
    dataset: Annotated[DatasetSpec, BeforeValidator(_dataset)]
    seeds: Annotated[tuple[int, ...], BeforeValidator(_seeds)] = (0, 1, 2)
    validation: Annotated[float | Literal["test"], BeforeValidator(_validation_choice)] = 0.1
    resplit: bool = False
    split_seed: NonNegInt = 0
    cv: CvSpec | None = None
    primary_metric: str | None = None
    baseline: str | None = None
    model: ModelSpec
    train: TrainSpec
    lint: LintSpec = LintSpec()
    limits: LimitsSpec = LimitsSpec()
    diagnostics: Annotated[DiagnosticsSpec | None, BeforeValidator(_diagnostics)] = None
    #: Reference models (scikit-learn) fit on every run's rows of a table (README, "Statistics
    #: and reports"); ``false`` turns them off.
    references: bool = True
    #: ``[search]`` as written: override paths -> distributions (``tricklab.tools.search``).
    search: dict[str, Any] | None = None
    variants: dict[str, Recipe]
    overrides: dict[str, dict[str, Any]]  # each variant's table as written (for reports)
    source: str | None = None  # the study file, when read from one

    #: The keys a study file may use (``overrides`` and ``source`` are filled in by tricklab).
    USER_KEYS: ClassVar[tuple[str, ...]] = (
        "baseline", "cv", "dataset", "description", "diagnostics", "grid", "limits", "lint",
        "model", "name", "primary_metric", "references", "resplit", "search", "seeds",
        "split_seed", "train", "validation", "variants",
    )  # fmt: skip

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        problem = _limits.name_problem(value)
        if problem is not None:
            raise _validation.own_error(
                f"must use {problem} (it names the run directory). "
                f"Received: name={_limits.received_name(value)}."
            )
        return value

    @model_validator(mode="after")
    def _cv_runs(self) -> StudySpec:
        """Under cv the runs of a variant are its folds x repeats: run i is fold i % folds of
        repeat i // folds, so the split settings of a train/test split do not apply."""
        if self.cv is None:
            return self
        given = [k for k in ("seeds", "resplit", "split_seed") if k in self.model_fields_set]
        if given or self.validation == "test":
            shown = (
                f"{given[0]}={_validation.show(getattr(self, given[0]))}"
                if given
                else "validation='test'"
            )
            raise _validation.own_error(
                "cv draws each repeat's folds and models with seed r, and carves validation "
                "from the training folds; drop seeds, resplit, split_seed and validation = "
                f'"test" (set cv.repeats instead). Received: cv with {shown}.',
                "cv",
            )
        self.__dict__["seeds"] = tuple(range(self.cv.folds * self.cv.repeats))
        return self

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path) -> StudySpec:
        """Read and validate a study TOML file; errors name the file."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SpecError("no such study file.", file=str(path)) from None
        except IsADirectoryError:
            raise SpecError(
                "is a directory; expected a study file (TOML).", file=str(path)
            ) from None
        except OSError as exc:
            raise SpecError(
                f"cannot read the study file: {exc.strerror}.", file=str(path)
            ) from None
        try:
            text = data.decode("utf-8-sig")  # a leading BOM (Windows Notepad) is not TOML
        except UnicodeDecodeError as exc:
            raise SpecError(
                f"{not_utf8(exc)}. A study file is TOML, which is UTF-8; save it as UTF-8.",
                file=str(path),
            ) from None
        if not text.strip():
            raise SpecError(
                "the file is empty; a study needs at least dataset = ..., [model] and [train].",
                file=str(path),
            )
        try:
            raw = tomli.loads(text)
        except tomli.TOMLDecodeError as exc:
            raise SpecError(f"not valid TOML: {exc}.", file=str(path)) from None
        except RecursionError as exc:  # tomli's own guard, far above MAX_DEPTH
            raise SpecError(
                f"toml: nesting depth exceeds the limit {_limits.MAX_DEPTH} (tomli: {exc})",
                file=str(path),
            ) from None
        raw.setdefault("name", path.stem)
        try:
            return cls.from_dict(raw, source=str(path))
        except SpecError as exc:
            raise exc.located(file=str(path)) from None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, source: str | None = None) -> StudySpec:
        """Validate a study given as a dictionary (the TOML structure)."""
        _limits.check_depth(raw)  # before anything walks the data recursively
        _validation.check_finite(raw)
        raw = dict(raw)
        internal = sorted(k for k in ("overrides", "source") if k in raw)
        if internal:
            raise SpecError(
                f"unknown key '{internal[0]}'. Expected one of: {', '.join(cls.USER_KEYS)}."
            )
        variants_raw = raw.pop("variants", {})
        grid_raw = raw.pop("grid", {})
        if not isinstance(variants_raw, Mapping):
            raise SpecError("variants: must be a table of named variants.")
        raw.setdefault("name", "study")
        cls._check_size(raw, variants_raw, grid_raw)
        base = {"model": raw.get("model"), "train": raw.get("train")}
        overrides = {name: dict(value or {}) for name, value in variants_raw.items()}
        for name, value in variants_raw.items():
            if not isinstance(value, Mapping):
                raise SpecError(
                    f'must be a table of overrides (e.g. train.loss = "mse"). '
                    f"Received: {_validation.show(value)}.",
                    where=f"variants.{name}",
                )
        overrides.update(_grid.expand(grid_raw, taken=set(overrides)))
        if not overrides:
            overrides = {"baseline": {}}
        _check_internal(base, overrides)
        base_dir = Path(source).parent if source else None
        recipes = cls._recipes(base, overrides, raw, base_dir)
        try:
            spec = cls.model_validate(
                {**raw, "variants": recipes, "overrides": overrides, "source": source}
            )
        except ValidationError as exc:
            raise SpecError(_validation.translate(exc, cls, raw)) from None
        spec._check_baseline()
        return spec

    @classmethod
    def _check_size(cls, raw: dict[str, Any], variants: Mapping[str, Any], grid: Any) -> None:
        """``[limits]``, on the counts as written: before the grid, the seeds or the runs are
        built (``seeds = 10000000`` is refused in microseconds, not after 600 MB)."""
        limits = LimitsSpec.parse(raw.get("limits"))
        count = max(len(variants) + _grid.count(grid), 1)  # none: the base recipe alone
        seeds = _limits.count(raw["seeds"]) if "seeds" in raw else None
        per_variant = len(cls.model_fields["seeds"].default) if seeds is None else seeds
        cv, repeats = raw.get("cv"), None
        if isinstance(cv, Mapping):  # a variant has folds x repeats runs
            defaults = CvSpec.model_fields
            folds = _limits.count(cv.get("folds", defaults["folds"].default))
            repeats = _limits.count(cv.get("repeats", defaults["repeats"].default))
            per_variant = folds * repeats
        limits.check_size(variants=count, seeds=seeds, repeats=repeats, runs=count * per_variant)

    @classmethod
    def _recipes(
        cls,
        base: dict[str, Any],
        overrides: dict[str, dict[str, Any]],
        raw: dict[str, Any],
        base_dir: Path | None,
    ) -> dict[str, Recipe]:
        problems: list[str] = []
        try:
            Recipe.model_validate(base)
        except ValidationError as exc:
            problems = _validation.translate(exc, Recipe, base)
        top = {k: v for k, v in raw.items() if k not in ("model", "train")}
        try:  # report the study's other fields together with the base recipe's problems
            cls.model_validate({**top, **base, "variants": {}, "overrides": {}})
        except ValidationError as exc:
            problems += [p for p in _validation.translate(exc, cls, raw) if p not in problems]
        if problems:
            raise SpecError(problems)
        found: dict[str, BuilderBinding] = {}  # each builder is read once, not per variant
        builder = (base.get("model") or {}).get("builder")
        if isinstance(builder, str):  # the base's own builder, located without a variant
            found[builder] = bind_builder(builder, base_dir)
        recipes: dict[str, Recipe] = {}
        for name, override in overrides.items():
            recipes[name] = cls._variant(name, base, override, base_dir, found)
        return recipes

    @staticmethod
    def _variant(
        name: str,
        base: dict[str, Any],
        override: dict[str, Any],
        base_dir: Path | None = None,
        found: dict[str, BuilderBinding] | None = None,
    ) -> Recipe:
        where = f"variants.{_limits.shown_name(name)}"
        problem = _limits.name_problem(name)
        if problem is not None:
            raise SpecError(
                f"variant names may use {problem} (they name run directories). "
                f"Received: {_limits.received_name(name)}.",
                where=where,
            )
        try:
            outside = [k for k in override if _merge.split_path(k)[0] not in ("model", "train")]
            if outside:
                raise SpecError(
                    f"unknown key '{outside[0]}'. A variant overrides the base recipe: keys "
                    'under model or train (e.g. train.loss, "model.layers[1].rate").',
                )
            merged = _merge.merge(base, override)
            _merge.check_same_model(base, merged)
            recipe = Recipe.model_validate(merged)
            return bound_recipe(recipe, base_dir, {} if found is None else found)
        except SpecError as exc:
            raise exc.located(where=where) from None
        except ValidationError as exc:
            raise SpecError(_validation.translate(exc, Recipe, merged), where=where) from None

    def _check_baseline(self) -> None:
        if self.baseline is not None and self.baseline not in self.variants:
            raise SpecError(
                f"baseline: no variant named '{self.baseline}'."
                f"{_validation.did_you_mean(self.baseline, list(self.variants))} "
                f"Expected one of: {', '.join(self.variants)}."
            )

    # -- derived --------------------------------------------------------------------------
    @property
    def baseline_variant(self) -> str:
        return self.baseline or next(iter(self.variants))

    @property
    def base_dir(self) -> Path | None:
        """The folder relative CSV paths are resolved against."""
        return Path(self.source).parent if self.source else None

    def select(self, variants: list[str] | None = None, seeds: int | None = None) -> StudySpec:
        """This study restricted to some variants and/or the first ``seeds`` seeds."""
        update: dict[str, Any] = {}
        if variants:
            unknown = [v for v in variants if v not in self.variants]
            if unknown:
                raise SpecError(
                    f"--variant: no variant named '{unknown[0]}'."
                    f"{_validation.did_you_mean(unknown[0], list(self.variants))} "
                    f"Expected one of: {', '.join(self.variants)}."
                )
            update["variants"] = {v: self.variants[v] for v in variants}
            update["overrides"] = {v: self.overrides[v] for v in variants}
            if self.baseline_variant not in variants:
                update["baseline"] = variants[0]
        if seeds is not None:  # checked before any seed is built
            self._check_seeds(seeds, len(update.get("variants", self.variants)))
        if seeds is not None and self.cv is not None:  # --seeds N: the first N repeats
            update["cv"] = self.cv.model_copy(update={"repeats": seeds})
            update["seeds"] = tuple(range(self.cv.folds * seeds))
        elif seeds is not None:
            update["seeds"] = self._first_seeds(seeds)
        return self.model_copy(update=update)

    def _check_seeds(self, n: int, variants: int) -> None:
        """``--seeds N`` obeys the study's ``[limits]`` as ``seeds = N`` would."""
        if n < 1:
            raise SpecError(f"--seeds must be an int >= 1. Received: {n}.")
        try:
            self.limits.check("--seeds", n, "max_seeds")
            self.limits.check("runs", variants * n * (self.cv.folds if self.cv else 1), "max_runs")
        except SpecError as exc:
            raise exc.located(file=self.source) from None

    def _first_seeds(self, n: int) -> tuple[int, ...]:
        """``--seeds N``: the first N seeds; a counted study (seeds 0..K-1) extends to 0..N-1."""
        if n <= len(self.seeds) or self.seeds == tuple(range(len(self.seeds))):
            return (*self.seeds, *range(len(self.seeds), n))[:n]
        raise SpecError(
            f"--seeds {n}: the study lists {len(self.seeds)} seeds "
            f"({', '.join(map(str, self.seeds))}), so at most {len(self.seeds)} can be taken. "
            "Add seeds to its list, or give seeds as a count (seeds = N) to extend it."
        )

    def with_epochs(self, epochs: int) -> StudySpec:
        """Every variant trained for at most ``epochs`` epochs (``--epochs``)."""
        if not 1 <= epochs <= MAX_EPOCHS:  # the bound of train.epochs in a study file
            raise SpecError(
                f"--epochs must be an int in [1, {MAX_EPOCHS:,}]. Received: --epochs={epochs}."
            )
        variants = {
            name: recipe.model_copy(
                update={"train": recipe.train.model_copy(update={"epochs": epochs})}
            )
            for name, recipe in self.variants.items()
        }
        return self.model_copy(update={"variants": variants})


def bind_builder(builder: str, base_dir: Path | None) -> BuilderBinding:
    """Where ``builder`` is and its source's sha256 (:func:`tricklab.spec._builder.locate`)."""
    path, digest = _builder.locate(builder, base_dir)
    return BuilderBinding(file=None if path is None else str(path), sha256=digest)


def bound_recipe(
    recipe: Recipe, base_dir: Path | None, found: dict[str, BuilderBinding] | None = None
) -> Recipe:
    """``recipe`` with its builder located (:class:`BuilderBinding`); a layers recipe as is."""
    builder = recipe.model.builder
    if builder is None:
        return recipe
    cache = {} if found is None else found
    if builder not in cache:
        cache[builder] = bind_builder(builder, base_dir)
    model = recipe.model.model_copy(update={"bound": cache[builder]})
    return recipe.model_copy(update={"model": model})


def _check_internal(base: Mapping[str, Any], overrides: Mapping[str, Mapping[str, Any]]) -> None:
    """``model.bound`` is tricklab's record of a builder (spec.json), not a study file's key."""
    model = base.get("model")
    if isinstance(model, Mapping) and "bound" in model:
        raise SpecError("model: unknown key 'bound'. Expected one of: args, builder, layers.")
    for name, override in overrides.items():
        for key, value in override.items():
            parts = _merge.split_path(key) if _merge.is_path(key) else [key]
            inner = value.get("bound") if isinstance(value, Mapping) else None
            if parts[:2] == ["model", "bound"] or (parts == ["model"] and inner is not None):
                raise SpecError(
                    "model: unknown key 'bound'. Expected one of: args, builder, layers.",
                    where=f"variants.{_limits.shown_name(name)}",
                )


def load_study(path: str | Path) -> StudySpec:
    """Read and validate a study file (see the README for its format)."""
    return StudySpec.from_file(path)
