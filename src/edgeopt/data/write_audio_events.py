"""``python -m edgeopt.data.write_audio_events DIR``: the synthesized sound events of
:mod:`edgeopt.data.audio_events` as WAV files, one sub-folder per class, the input folder of
``edgeopt optimize zoo:audio-events --inputs DIR``."""

from __future__ import annotations

import argparse

from .audio_events import CLASSES, PARTS, write_audio_events


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments and write the clips."""
    parser = argparse.ArgumentParser(prog="python -m edgeopt.data.write_audio_events",
                                     description="Write synthesized sound events as WAV files, a sub-folder per class.")
    parser.add_argument("folder")
    parser.add_argument("--part", default="test", choices=list(PARTS), help="train or test (disjoint clips)")
    parser.add_argument("--per-class", type=int, default=40, help="clips per class")
    parser.add_argument("--seed", type=int, default=0, help="the data set's seed")
    args = parser.parse_args(argv)
    root = write_audio_events(args.folder, args.part, per_class=args.per_class, seed=args.seed)
    print(f"wrote {args.per_class * len(CLASSES)} clips ({', '.join(CLASSES)}) to {root}")


if __name__ == "__main__":
    main()
