"""The "How to run it" part of the ``optimize`` report: the runtime the chosen model needs
(its pip package, at the version measured), a Python snippet that opens the model beside
deploy.json with the measured settings and runs it, and how fast the same model ran on
the other runtimes tried (with a warning when another runtime is much slower: the model
was chosen for one runtime and must be deployed with it).

The numbers come from the run's trials (each trial's own timing); the snippet reads
deploy.json as :func:`edgeopt.optimizer.result.deploy_record` writes it.
"""

from __future__ import annotations

from ..backends.registry import get
from ..errors import BackendUnavailable
from .doc import Alert, Block, Paragraph, Preformatted, plural
from .optimize_rows import find_trial, measured_trials, ms_text, point_of

# The runtimes' own names, as their documentation spells them.
RUNTIME_NAMES = {"ort": "ONNX Runtime", "openvino": "OpenVINO", "tvm": "Apache TVM", "torch": "PyTorch",
                 "litert": "LiteRT", "reference": "the ONNX reference evaluator"}
EXTRAS = ("ort", "openvino")  # backends with an edgeopt extra of their name (pyproject.toml)
SLOW = 0.8
"""Another runtime below this fraction of the chosen one's speed gets a warning."""


def runtime_name(backend: str) -> str:
    """"ONNX Runtime" for "ort", ...; the registry name for the others."""
    return RUNTIME_NAMES.get(backend, backend)


def _package(backend: str, summary: dict) -> str:
    """"openvino==2026.4.1": the runtime's PyPI distribution at the version measured
    (without a version when the run did not record it)."""
    try:
        dist = get(backend).distribution or backend
    except BackendUnavailable:  # a backend this edgeopt no longer registers
        return backend
    version = ((summary.get("machine") or {}).get("libraries") or {}).get(dist)
    return f"{dist}=={version}" if version else dist


def other_runtimes(summary: dict) -> list[tuple[dict, float]]:
    """The chosen model measured on other runtimes: per backend, the trial of the same
    recipe and batch (the same thread count when measured, else its fastest), with its
    speed relative to the chosen's (chosen per-image ms / its per-image ms: 0.28 means
    it runs at 0.28x the chosen's speed). [] when the chosen was not measured or ran on
    one runtime only."""
    win = find_trial(summary, summary["winner"])
    if win is None:
        return []
    wp = point_of(win)
    best: dict[str, dict] = {}
    for t in measured_trials(summary):
        p = point_of(t)
        if p.backend == wp.backend or p.recipe != wp.recipe or p.batch != wp.batch or not t["per_image_ms"]:
            continue
        held = best.get(p.backend)
        key = (p.threads != wp.threads, t["per_image_ms"])  # same threads first, then the fastest
        if held is None or key < (point_of(held).threads != wp.threads, held["per_image_ms"]):
            best[p.backend] = t
    return [(t, win["per_image_ms"] / t["per_image_ms"]) for _, t in sorted(best.items())]


def _speed_blocks(summary: dict, win: dict) -> tuple[list[Block], Paragraph]:
    """The warnings (another runtime under :data:`SLOW` times the chosen's speed) and the
    line that gives the chosen model's speed on every other runtime tried."""
    others, chosen = other_runtimes(summary), runtime_name(point_of(win).backend)
    if not others:
        return [], Paragraph(["The chosen model was not measured on another runtime in this run."])
    alerts: list[Block] = [
        Alert(f"this model runs **{r:.2f}x** as fast on {runtime_name(point_of(t).backend)} ({ms_text(t)} ms vs "
              f"{ms_text(win)} ms per image): deploy it with {chosen}, as deploy.json says.")
        for t, r in others if r < SLOW]
    parts = [f"{runtime_name(point_of(t).backend)} {r:.2f}x (#{t['number']} {t['label']}, {ms_text(t)} ms "
             f"vs {ms_text(win)} ms per image)" for t, r in others]
    return alerts, Paragraph([f"The same model on the other runtimes tried (speed relative to {chosen}; "
                              "each trial's own timing): " + "; ".join(parts) + "."])


def snippet(backend: str) -> list[str]:
    """Python that opens model.onnx beside deploy.json with the measured settings and runs
    it on one input (an image through the recorded preprocessing, else zeros)."""
    return [
        "import json",
        "import numpy as np",
        "import edgeopt",
        "from edgeopt.preprocess import Preprocess",
        "from PIL import Image",
        "",
        'deploy = json.load(open("deploy.json"))',
        f'session = edgeopt.load_deployment("deploy.json")  # {runtime_name(backend)}, the measured settings',
        'inp = deploy["inputs"][0]',
        'if deploy["preprocess"]:  # an image model: the measured resize, scale, mean/std and layout',
        '    x = Preprocess.from_dict(deploy["preprocess"])(Image.open("image.jpg"))[None]',
        "else:  # your own array of the input's shape and dtype",
        '    x = np.zeros(inp["shape"], dtype=inp["dtype"])',
        'outputs = session.run({inp["name"]: x})  # one array per name in deploy["outputs"]',
        'if deploy["labels"]:  # a classifier: its top-1 label',
        '    print(deploy["labels"][int(outputs[0][0].argmax())])',
    ]


# Without edgeopt: the runtime's own API, with the settings deploy.json recorded.
PLAIN = {
    "ort": ["import onnxruntime as ort",
            's = deploy["runtime"]["settings"]',
            "opts = ort.SessionOptions()",
            'opts.intra_op_num_threads = s["intra_op_num_threads"]',
            'opts.inter_op_num_threads = s["inter_op_num_threads"]',
            'opts.execution_mode = getattr(ort.ExecutionMode, s["execution_mode"])',
            'opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, s["graph_optimization_level"])',
            'for key, value in s["config_entries"].items():',
            '    opts.add_session_config_entry(key, str(value))',
            'session = ort.InferenceSession(deploy["model_file"], opts, providers=s["providers"])',
            'outputs = session.run(None, {inp["name"]: x})'],
    "openvino": ["import openvino as ov",
                 's = deploy["runtime"]["settings"]',
                 'compiled = ov.Core().compile_model(deploy["model_file"], s["device"],',
                 '                                   {k: str(v) for k, v in s["properties"].items()})',
                 'outputs = list(compiled({inp["name"]: x}).values())'],
}


def howto_blocks(summary: dict) -> list[Block]:
    """The "How to run it" section's blocks (after its heading)."""
    win = find_trial(summary, summary["winner"])
    if win is None:
        return [Paragraph(["The chosen trial is not in this summary: see deploy.json."])]
    backend = point_of(win).backend
    name, package = runtime_name(backend), _package(backend, summary)
    extra = f"[{backend}]" if backend in EXTRAS else ""
    alerts, speeds = _speed_blocks(summary, win)
    out: list[Block] = [
        *alerts,
        Paragraph([f"The chosen model runs on **{name}** with {plural(point_of(win).threads, 'thread')} at batch "
                   f"{point_of(win).batch}. Copy `model.onnx` and `deploy.json` together and run the code in "
                   f"their folder; install the runtime (`pip install {package}`, the version measured) and "
                   f"edgeopt to open it with exactly the measured settings (`pip install 'edgeopt{extra}'`):"]),
        Preformatted(snippet(backend), "python"),
    ]
    plain = PLAIN.get(backend)
    if plain:
        out += [Paragraph([f"Without edgeopt, {name} alone (after the lines that read deploy.json and "
                           "make `x` above):"]), Preformatted(plain, "python")]
    return out + [speeds]
