"""Ring vs sequential pipeline with the original and an optimized MTCNN, on a simulated
30 fps camera replaying the test clip in real time (issue 7).

1. The optimized MTCNN: ``edgeopt.optimize`` on ``zoo:mtcnn-pnet`` (candidates: cleanup,
   fp16, int8 ORT/NNCF/dynamic x ORT/OpenVINO; no pruning), calibration and quality
   images are frames of the test clip at P-Net's first pyramid level (384x288). The
   winner replaces P-Net, and the detector runs on the winner's backend. Per-frame
   detection time of both detectors on the same clip frames (alternating) checks that
   the end-to-end detector is faster too.
2. Each detector x pipeline x clip length (10 s, 20 s). Every run lasts as long as the
   camera (the clip): what was not processed by then is dropped. Camera queue: the
   sequential loop is run with an unbounded queue (a stream replayed in real time: the
   backlog grows) and with a 4-frame V4L2-like queue (frames are lost instead).
   Annotated frames are encoded to H.264 (as ``edgeopt stream --out x.mp4``).
3. Face detection rate on ``skimage.data.lfw_subset()`` for both detectors.

    python benchmarks/stream_latency.py [--threads 2] [--out benchmarks/results/stream_latency.json]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _results import write_results

import edgeopt
from edgeopt.bench.stats import percentile
from edgeopt.detect import MtcnnDetector
from edgeopt.data.images import ImageSet
from edgeopt.optimizer.config import OptimizeConfig
from edgeopt.optimizer.result import summary as result_summary
from edgeopt.stream import (
    MtcnnFrameDetector,
    SimCamera,
    TestClip,
    lfw_rates,
    run_ring,
    run_sequential,
)
from edgeopt.stream.sinks import VideoSink

FPS = 30.0
CAMERA_QUEUES = {"unbounded": None, "4": 4}


def optimize_pnet(threads: int) -> tuple[object, str, dict]:
    """(optimized P-Net Model, its backend, summary) from ``edgeopt.optimize``."""
    pnet = edgeopt.load_model("zoo:mtcnn-pnet")
    clip = TestClip(20, FPS)
    frames = [clip[i] for i in range(0, len(clip), 10)]  # 60 frames, all four shots
    images = ImageSet(images=frames[1::2])
    calibration = ImageSet(images=frames[0::2])
    cfg = OptimizeConfig(threads=threads, prune_targets=(), min_time_s=0.5, max_time_s=2.0, confirm_rounds=3)
    t0 = time.perf_counter()
    result = edgeopt.optimize(pnet, images, calibration=calibration, config=cfg, progress=False)
    summary = result_summary(result)
    summary["wall_s"] = time.perf_counter() - t0
    return result.winner_model, result.winner.point.backend, summary


def detect_ms(dets: dict[str, MtcnnFrameDetector], frames: list[np.ndarray], rounds: int = 3) -> dict:
    """Per-frame detection time (ms) of each detector on ``frames``, alternating rounds."""
    times: dict[str, list[float]] = {k: [] for k in dets}
    for _ in range(rounds):
        for name, det in dets.items():
            for f in frames:
                t = time.perf_counter()
                det(f)
                times[name].append((time.perf_counter() - t) * 1e3)
    return {k: {"p50": percentile(v, 50), "p90": percentile(v, 90), "mean": float(np.mean(v))}
            for k, v in times.items()}


def stream(det: MtcnnFrameDetector, pipeline: str, seconds: float, queue: int | None, tmp: Path) -> dict:
    cam = SimCamera(TestClip(seconds, FPS), FPS, buffers=queue)
    sink = VideoSink(tmp / f"{pipeline}-{seconds:g}.mp4", FPS)
    run = run_ring if pipeline == "ring" else run_sequential
    report = run(cam, det, sink, max_seconds=seconds)
    return report.to_dict()


def run(threads: int, lengths: list[float]) -> dict:
    t_start = time.perf_counter()
    pnet_opt, backend_opt, opt_summary = optimize_pnet(threads)
    print(f"optimize zoo:mtcnn-pnet: chosen {opt_summary['winner']} "
          f"({opt_summary['speedup_vs_baseline']:.2f}x P-Net at 288x384) in {opt_summary['wall_s']:.0f} s", flush=True)
    rnet, onet = (edgeopt.load_model(f"zoo:mtcnn-{n}") for n in ("rnet", "onet"))
    pnet = edgeopt.load_model("zoo:mtcnn-pnet")
    dets = {
        "original": MtcnnFrameDetector(MtcnnDetector(pnet, rnet, onet, backend="ort", threads=threads)),
        "optimized": MtcnnFrameDetector(MtcnnDetector(pnet_opt, rnet, onet, backend=backend_opt, threads=threads)),
    }
    clip = TestClip(8, FPS)
    sample = [clip[i] for i in range(5, len(clip), 20)]  # 12 frames over the four shots
    for det in dets.values():  # sessions per pyramid size / batch size, OpenVINO compiles
        for f in sample:
            det(f)
    per_frame = detect_ms(dets, sample)
    print("detect ms/frame:", {k: round(v["p50"], 1) for k, v in per_frame.items()}, flush=True)
    lfw = {}
    for name, det in dets.items():
        found, false_pos = lfw_rates(det.detector)
        lfw[name] = {"faces_found": found, "false_positives": false_pos}
    print("lfw_subset:", lfw, flush=True)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, det in dets.items():
            for seconds in lengths:
                combos = [("ring", "4")] + [("sequential", q) for q in CAMERA_QUEUES]
                for pipeline, queue in combos:
                    r = stream(det, pipeline, seconds, CAMERA_QUEUES[queue], Path(tmp))
                    r.update(model=name, clip_s=seconds, camera_queue=queue)
                    runs.append(r)
                    print(f"{name} {pipeline} q={queue} {seconds:g}s: {r['fps']:.1f} fps, "
                          f"p90 {r['latency_ms']['p90']:.0f} ms", flush=True)
    for det in dets.values():
        det.close()
    from edgeopt.bench.environment import machine_info

    return {"machine": machine_info(), "threads": threads, "fps": FPS, "optimize": opt_summary,
            "optimized": {"pnet_recipe": opt_summary["winner"], "backend": backend_opt},
            "detect_ms": per_frame, "lfw_subset": lfw, "runs": runs,
            "wall_s": time.perf_counter() - t_start}


def markdown(data: dict) -> str:
    opt = data["optimize"]
    per = data["detect_ms"]
    out = [f"### Real-time MTCNN on a simulated {data['fps']:g} fps camera ({data['threads']} threads)\n",
           f"Optimized = P-Net from `edgeopt.optimize`: **{opt['winner']}** "
           f"({opt['confirmed_speedup']:.2f}x on P-Net alone at 288x384), detector on "
           f"`{data['optimized']['backend']}`. Whole detector per frame (640x480 clip, p50): original "
           f"{per['original']['p50']:.1f} ms, optimized {per['optimized']['p50']:.1f} ms "
           f"({per['original']['p50'] / per['optimized']['p50']:.2f}x).\n",
           "| model | pipeline | camera queue | clip s | fps | captured | processed | dropped "
           "| p50 ms | p90 ms | p99 ms | last-quarter p90 ms |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in data["runs"]:
        lat, last = r["latency_ms"], r["latency_last_ms"]
        out.append(f"| {r['model']} | {r['pipeline']} | {r['camera_queue']} | {r['clip_s']:g} | {r['fps']:.1f} "
                   f"| {r['captured']} | {r['processed']} | {r['dropped']} | {lat['p50']:.0f} | {lat['p90']:.0f} "
                   f"| {lat['p99']:.0f} | {last['p90']:.0f} |")
    out.append("\nMean stage times (ms/frame), 20 s ring runs:\n")
    out.append("| model | preprocess | inference | postprocess | draw+write |\n|---|---:|---:|---:|---:|")
    longest = max(r["clip_s"] for r in data["runs"])
    for r in data["runs"]:
        if r["pipeline"] == "ring" and r["clip_s"] == longest:
            s = r["stage_ms"]
            out.append(f"| {r['model']} | {s['preprocess']:.1f} | {s['inference']:.1f} | {s['postprocess']:.1f} "
                       f"| {s['draw']:.1f} |")
    out.append("\nGrowth of p90 latency from the shortest to the longest clip:\n")
    lengths = sorted({r["clip_s"] for r in data["runs"]})
    for model in ("original", "optimized"):
        for pipeline, queue in (("ring", "4"), ("sequential", "unbounded"), ("sequential", "4")):
            p90 = [next(r["latency_ms"]["p90"] for r in data["runs"] if r["model"] == model and
                        r["pipeline"] == pipeline and r["camera_queue"] == queue and r["clip_s"] == s)
                   for s in lengths]
            out.append(f"- {model} {pipeline} (queue {queue}): p90 " + " -> ".join(f"{v:.0f}" for v in p90)
                       + f" ms ({p90[-1] / p90[0]:.2f}x)")
    lfw = data["lfw_subset"]
    out.append("\nlfw_subset (100 faces / 100 non-faces, min_face 40): " + "; ".join(
        f"{k}: {v['faces_found']:.0%} faces found, {v['false_positives']:.0%} false positives"
        for k, v in lfw.items()))
    out.append(f"\nTotal wall time {data['wall_s']:.0f} s.")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lengths", default="10,20", help="clip lengths, s")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "stream_latency.json")
    args = ap.parse_args()
    data = run(args.threads, [float(s) for s in args.lengths.split(",")])
    write_results(args.out, data, markdown(data))


if __name__ == "__main__":
    main()
