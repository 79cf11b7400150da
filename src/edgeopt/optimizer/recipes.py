"""The one vocabulary of recipes: what a candidate model is, and which passes build it.

A :class:`Recipe` says what decides a built model: structured pruning (a fraction of the
MACs, how channels are ranked, recovered by distillation or not), graph cleanup, and a
precision (with its calibration method and the layers kept in float). Every part of edgeopt
that names a model variant uses this one table: the grid and the sampled search of
``optimize``, ``edgeopt energy --compare`` and every report. Building a recipe only runs
registered passes (:mod:`edgeopt.passes.base`); the optimizer adds no new way to change a
model.

:data:`PRECISIONS` maps each precision to the pass that gives it and the config it takes
(a registry, as the passes and backends have), so a new precision is one entry here.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Sequence

from ..errors import EdgeoptError
from ..passes.qat import QatConfig
from ..passes.quantize import NncfQuantConfig, StaticQuantConfig


@dataclass(frozen=True)
class PrecisionSpec:
    """One precision of the vocabulary.

    Attributes:
        name: the precision's name in recipes ("int8-ort", ...).
        pass_name: the registered pass that gives it, or None (fp32: no pass).
        config: ``config(recipe, keep) -> pass config`` (None: the pass's defaults), where
            ``keep`` are node names to leave in float (mixed precision).
        mixed: whether layers can be kept in float one by one (accuracy-aware fallback).
        calibrated: whether it needs calibration images (and so a calibration method may
            be chosen).
        cleanup_first: the graph is cleaned up (onnxslim) before the pass; off for the
            libraries' own defaults, which quantize the graph as given.
        trained: the pass trains within a wall-time budget (its config's ``seconds``),
            which the optimizer gives it from the time left; such a precision is tried
            only when post-training int8 breaks the quality budget and the fallback did
            not fix it (:mod:`edgeopt.optimizer.qat_step`), never in the default grid nor
            drawn by the search (``--recipes`` may name it).
        summary: one line for listings.
    """

    name: str
    pass_name: str | None
    config: Callable[["Recipe", tuple[str, ...]], Any]
    mixed: bool = False
    calibrated: bool = False
    cleanup_first: bool = True
    trained: bool = False
    summary: str = ""


def _no_config(recipe: "Recipe", keep: tuple[str, ...]) -> None:
    return None


def _ort_static(recipe: "Recipe", keep: tuple[str, ...]) -> Any:
    return StaticQuantConfig(calibration_method=recipe.calibration, nodes_to_exclude=keep)


def _nncf(recipe: "Recipe", keep: tuple[str, ...]) -> Any:
    return NncfQuantConfig(ignored_nodes=keep)


def _qat(recipe: "Recipe", keep: tuple[str, ...]) -> Any:
    return QatConfig()  # the builder sets its seconds (ModelBuilder.set_training)


PRECISIONS: dict[str, PrecisionSpec] = {s.name: s for s in (
    PrecisionSpec("fp32", None, _no_config, summary="the original float32 weights"),
    PrecisionSpec("fp16", "fp16", _no_config, summary="float16 weights and activations"),
    PrecisionSpec("int8-ort", "int8-static", _ort_static, mixed=True, calibrated=True,
                  summary="int8 static QDQ, per-channel (ONNX Runtime's quantizer)"),
    PrecisionSpec("int8-nncf", "int8-nncf", _nncf, mixed=True, calibrated=True,
                  summary="int8 post-training quantization with NNCF (for OpenVINO)"),
    PrecisionSpec("int8-dynamic", "int8-dynamic", _no_config,
                  summary="int8 weights, activations quantized at run time (ONNX Runtime)"),
    # What a user gets from the libraries without edgeopt: the baselines edgeopt must beat.
    PrecisionSpec("int8-ort-defaults", "int8-ort-defaults", _no_config, calibrated=True, cleanup_first=False,
                  summary="ONNX Runtime's quantize_static with its own defaults, on the graph as given"),
    PrecisionSpec("int8-nncf-defaults", "int8-nncf-defaults", _no_config, calibrated=True, cleanup_first=False,
                  summary="nncf.quantize with its own defaults, on the graph as given"),
    # Trains from the float model's own torch graph and exports a fresh QDQ graph, so a
    # cleanup of the ONNX graph first would change nothing the pass keeps.
    PrecisionSpec("qat", "qat", _qat, calibrated=True, cleanup_first=False, trained=True,
                  summary="int8 QDQ by quantization-aware training, distilled from the original"),
)}
UNTRAINED = tuple(name for name, spec in PRECISIONS.items() if not spec.trained)
"""The precisions a grid or a search tries by default (a trained one only when int8 needs it)."""
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
PRUNE_SCOPES = ("global", "sensitivity")


def precision(name: str) -> PrecisionSpec:
    """The :class:`PrecisionSpec` of ``name``.

    Raises:
        EdgeoptError: unknown precision (the message lists the known ones).
    """
    try:
        return PRECISIONS[name]
    except KeyError:
        raise EdgeoptError(f"unknown precision {name!r}: choose from {', '.join(PRECISIONS)}") from None


@dataclass(frozen=True)
class Recipe:
    """What decides a built model (not how it runs: that is the backend and its settings).

    Attributes:
        prune: fraction of MACs removed by structured channel pruning (0: unpruned).
        prune_scope: "global" (channels ranked across layers) or "sensitivity" (each layer
            capped at the ratio a per-layer sensitivity analysis found safe).
        recover: distill the pruned model from the original (knowledge distillation)
            before the precision change; off only where accuracy does not matter (energy
            accounting counts bytes).
        cleanup: graph cleanup (onnxslim) before the precision change.
        precision: a key of :data:`PRECISIONS`.
        calibration: the calibration method of a calibrated precision that has one
            (int8-ort: minmax, entropy or percentile); "" otherwise.
        float_layers: the layers with the worst measured int8 error kept in float (mixed
            precision; 0 for none).

    A recipe is kept in one canonical form per distinct model (an fp16 or int8 model is
    always cleaned up first, a pruning scope means nothing without pruning, ...), so equal
    models compare equal and share cached builds.
    """

    prune: float = 0.0
    prune_scope: str = "global"
    recover: bool = True
    cleanup: bool = False
    precision: str = "fp32"
    calibration: str = ""
    float_layers: int = 0

    def __post_init__(self) -> None:
        spec = precision(self.precision)
        canon = {}
        if self.prune == 0.0:
            canon.update(prune_scope="global", recover=True)
        if self.precision != "fp32":
            # Quantizing an uncleaned graph only quantizes what cleanup would remove; the
            # libraries' defaults are taken as a user gets them, on the graph as given.
            canon["cleanup"] = spec.cleanup_first
        if self.precision != "int8-ort":
            canon["calibration"] = ""
        elif not self.calibration:
            canon["calibration"] = "minmax"
        if not spec.mixed:
            canon["float_layers"] = 0
        for k, v in canon.items():
            object.__setattr__(self, k, v)
        if not 0.0 <= self.prune < 1.0:
            raise EdgeoptError(f"prune fraction {self.prune} must be in [0, 1): e.g. 0.3")
        if self.prune_scope not in PRUNE_SCOPES:
            raise EdgeoptError(f"unknown prune scope {self.prune_scope!r}: choose from {', '.join(PRUNE_SCOPES)}")
        if self.calibration and self.calibration not in CALIBRATION_METHODS:
            raise EdgeoptError(f"unknown calibration {self.calibration!r}: choose from "
                               f"{', '.join(CALIBRATION_METHODS)}")
        if self.float_layers < 0:
            raise EdgeoptError("float_layers must be >= 0")

    @property
    def spec(self) -> PrecisionSpec:
        """The precision's registry entry."""
        return PRECISIONS[self.precision]

    @property
    def name(self) -> str:
        """The recipe's one name, e.g. "fp32", "fp32-clean", "int8-ort-entropy",
        "pruned-50+kd", "pruned-50s+kd/int8-nncf-2fp" ("s": sensitivity-capped pruning,
        "+kd": recovered by distillation, "-2fp": 2 layers kept in float)."""
        parts = []
        if self.prune:
            scope = "" if self.prune_scope == "global" else "s"
            parts.append(f"pruned-{round(self.prune * 100)}{scope}" + ("+kd" if self.recover else ""))
        prec = self.precision
        if self.precision == "fp32" and self.cleanup:
            prec = "fp32-clean"
        if self.calibration and self.calibration != "minmax":
            prec += f"-{self.calibration}"
        if self.float_layers:
            prec += f"-{self.float_layers}fp"
        if not parts or prec != "fp32":
            parts.append(prec)
        return "/".join(parts)

    @property
    def whole(self) -> "Recipe":
        """The same recipe with no layer kept in float (what the int8 error ranking of a
        mixed-precision recipe is measured on)."""
        return replace(self, float_layers=0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


_NAME = re.compile(r"^(?:pruned-?(\d{1,2})(s?)(\+kd)?(?:/|$))?(.*)$")
_PRECISION_NAME = re.compile(r"^(fp32-clean|fp32|fp16|int8-ort-defaults|int8-nncf-defaults|int8-ort|int8-nncf|int8-dynamic|qat)"
                             r"(?:-(minmax|entropy|percentile))?(?:-(\d+)fp)?$")
# Short names users type on the command line (``edgeopt energy --compare int8,pruned50``).
ALIASES = {"int8": "int8-ort", "int8-static": "int8-ort"}


def parse_recipe(name: str, *, recover: bool | None = None) -> Recipe:
    """The :class:`Recipe` of a name as :attr:`Recipe.name` writes it, or a short alias
    ("int8" for int8-ort, "pruned50" for 50% of the MACs pruned).

    Args:
        recover: for a pruned name without "+kd": whether to distill anyway (None: as the
            name says, i.e. no).

    Raises:
        EdgeoptError: the name is not a recipe (the message shows the form).
    """
    text = name.strip().lower()
    m = _NAME.match(text)
    prec = ALIASES.get(m.group(4), m.group(4)) if m else ""
    p = _PRECISION_NAME.match(prec or "fp32")
    if m is None or p is None or (m.group(1) is not None and not 0 < int(m.group(1)) < 100):
        raise EdgeoptError(
            f"unknown recipe {name!r}: give [pruned-NN[s][+kd]/]PRECISION[-CALIBRATION][-Kfp] with NN% of the "
            f"MACs removed (1-99) and PRECISION one of fp32, fp32-clean, {', '.join(list(PRECISIONS)[1:])}, "
            f"e.g. int8-ort, pruned50, pruned-30+kd/int8-nncf")
    pruned = m.group(1) is not None
    return Recipe(
        prune=int(m.group(1)) / 100 if pruned else 0.0,
        prune_scope="sensitivity" if m.group(2) else "global",
        recover=bool(m.group(3)) if recover is None else recover,
        cleanup=p.group(1) == "fp32-clean",
        precision="fp32" if p.group(1) == "fp32-clean" else p.group(1),
        calibration=p.group(2) or "",
        float_layers=int(p.group(3) or 0),
    )


def grid_recipes(prune_targets: tuple[float, ...] = (0.3, 0.5)) -> tuple[Recipe, ...]:
    """The recipes the exhaustive strategy tries by default: the original, cleanup, fp16,
    each post-training int8 flavour, and for each pruning target the pruned + distilled
    model alone and followed by NNCF int8 (channels removed speed up every dense kernel;
    int8 on top multiplies the gains where the CPU has a fast int8 path). A trained
    precision (qat) is not among them: it is tried when int8 needs it."""
    out = [Recipe(), Recipe(cleanup=True), *(Recipe(precision=p) for p in UNTRAINED if p != "fp32")]
    for t in prune_targets:
        out += [Recipe(prune=t), Recipe(prune=t, precision="int8-nncf")]
    return tuple(out)


def parse_recipes(names: Sequence[str]) -> tuple[Recipe, ...]:
    """The grid's recipes from names (:func:`parse_recipe` each, e.g. ``--recipes
    fp32,int8-ort,int8-nncf``): the original (fp32) first whether named or not, since it is
    the baseline every speed-up and quality drop is measured against; a recipe named twice
    (or by an alias and its name) once.

    Raises:
        EdgeoptError: no name, or a name that is not a recipe (see :func:`parse_recipe`).
    """
    if not names:
        raise EdgeoptError("no recipe named: give e.g. fp32,int8-ort,int8-nncf")
    return tuple(dict.fromkeys([Recipe(), *(parse_recipe(n) for n in names)]))
