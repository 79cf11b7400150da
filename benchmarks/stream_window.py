"""What the on-screen window (``edgeopt stream --show``) costs the real-time pipeline.

The original MTCNN (ORT, 1 thread) in the ring pipeline on the simulated 30 fps camera
replaying the test clip, with three outputs: none, the window, the window and an H.264
video. Rounds alternate the outputs (this machine is noisy); each run lasts the clip.
Reported: processed fps, glass-to-glass p50/p90 and the draw stage (drawing plus the
outputs' write), per output, median over the rounds.

Needs a display; on a machine without one run it on a virtual one (software rendering,
so the window's cost is the X server's too):

    xvfb-run -s "-screen 0 1280x1024x24" python benchmarks/stream_window.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _results import write_results

import edgeopt
from edgeopt.detect import MtcnnDetector
from edgeopt.stream import MtcnnFrameDetector, SimCamera, TestClip, make_sink, run_ring
from edgeopt.stream.window import display_error

FPS = 30.0
OUTPUTS = {"none": (False, False), "window": (True, False), "window + video": (True, True)}


def run(rounds: int, seconds: float, threads: int) -> dict:
    nets = [edgeopt.load_model(f"zoo:mtcnn-{n}") for n in ("pnet", "rnet", "onet")]
    det = MtcnnFrameDetector(MtcnnDetector(*nets, backend="ort", threads=threads))
    clip = TestClip(seconds, FPS)
    for i in range(0, len(clip), 15):  # one session per pyramid size
        det(clip[i])
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for name, (show, video) in OUTPUTS.items():
                out = Path(tmp) / f"{r}-{len(runs)}.mp4" if video else None
                sink = make_sink(out, FPS, show=show, title=f"stream_window: {name}")
                report = run_ring(SimCamera(clip, FPS), det, sink, max_seconds=seconds).to_dict()
                report.update(output=name, round=r)
                runs.append(report)
                print(f"round {r} {name}: {report['fps']:.1f} fps, p90 {report['latency_ms']['p90']:.0f} ms, "
                      f"draw {report['stage_ms']['draw']:.1f} ms", flush=True)
    det.close()
    summary = {}
    for name in OUTPUTS:
        mine = [x for x in runs if x["output"] == name]
        summary[name] = {
            "fps": float(np.median([x["fps"] for x in mine])),
            "p50_ms": float(np.median([x["latency_ms"]["p50"] for x in mine])),
            "p90_ms": float(np.median([x["latency_ms"]["p90"] for x in mine])),
            "draw_ms": float(np.median([x["stage_ms"]["draw"] for x in mine])),
        }
    from edgeopt.bench.environment import machine_info

    return {"machine": machine_info(), "display": os.environ.get("DISPLAY"), "threads": threads, "fps": FPS,
            "clip_s": seconds, "rounds": rounds, "summary": summary, "runs": runs}


def markdown(data: dict) -> str:
    lines = [f"# The stream window's cost (ring pipeline, original MTCNN, ORT {data['threads']} thread, "
             f"{data['clip_s']:g} s clip at {data['fps']:g} fps, median of {data['rounds']} alternating rounds, "
             f"display {data['display']})", "",
             "| output | fps | p50 ms | p90 ms | draw + write ms/frame |", "|---|---|---|---|---|"]
    for name, s in data["summary"].items():
        lines.append(f"| {name} | {s['fps']:.1f} | {s['p50_ms']:.0f} | {s['p90_ms']:.0f} | {s['draw_ms']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0, help="clip length, s")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "stream_window.json")
    args = ap.parse_args()
    why = display_error()
    if why:
        raise SystemExit(f"stream_window: {why} (or run it under xvfb-run)")
    t0 = time.perf_counter()
    data = run(args.rounds, args.seconds, args.threads)
    data["wall_s"] = time.perf_counter() - t0
    write_results(args.out, data, markdown(data))


if __name__ == "__main__":
    main()
