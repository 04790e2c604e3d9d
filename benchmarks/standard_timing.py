"""Training seconds per method in the ``standard`` profile, on this machine's CPU.

A full standard training takes minutes per method, so timing all of them one after the other on
a quiet machine would take most of an hour. Instead each method is trained twice on one synthetic
category with its standard settings, for ``a`` and ``b`` optimiser steps; the difference gives the
seconds per step, the rest the fixed cost (building the networks, caching features, AnoSeg's
detection GAN), and the two together the time of the profile's full schedule::

    OMP_NUM_THREADS=2 python benchmarks/standard_timing.py            # writes results/standard_timing.md
    python benchmarks/standard_timing.py --methods riad,ssm --steps 5,15

The estimate assumes the time per step does not change during training (true for these methods:
their batches have a fixed size) and ignores the load of other processes, so run it on an
otherwise idle machine; the load average is recorded next to the numbers.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from anolearn.config import get_profile  # noqa: E402
from anolearn.data import load_dataset  # noqa: E402
from anolearn.methods import create_method  # noqa: E402

TRAINED = ["draem", "sgsf", "anoseg", "cutpaste", "cutswap", "riad", "ssm"]


def fit_seconds(method: str, settings: dict, train) -> float:
    model = create_method(method, **settings)
    start = time.perf_counter()
    model.fit(train, progress=False)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--methods", default=",".join(TRAINED))
    p.add_argument("--category", default="capsule")
    p.add_argument("--steps", default="10,30", help="the two step counts a,b")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "standard_timing.md")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    a, b = (int(s) for s in args.steps.split(","))
    profile = get_profile("standard")
    train = load_dataset("synthetic", args.category, "train", profile)
    load_before = os.getloadavg()
    rows = []
    for method in args.methods.split(","):
        schedule = profile.schedule(method)
        ta = fit_seconds(method, {**schedule, "steps": a}, train)
        tb = fit_seconds(method, {**schedule, "steps": b}, train)
        per_step = (tb - ta) / (b - a)
        fixed = max(ta - a * per_step, 0.0)
        total = fixed + schedule["steps"] * per_step
        rows.append((method, schedule["steps"], per_step, fixed, total))
        print(f"{method:9s} {per_step:6.3f} s/step, fixed {fixed:5.1f} s -> {schedule['steps']} steps: "
              f"{total:6.0f} s ({total / 60:.1f} min)", flush=True)
    load_after = os.getloadavg()
    lines = [
        "# Training time per method and category, standard profile",
        "",
        f"Command: `OMP_NUM_THREADS={args.threads} python benchmarks/standard_timing.py --steps {a},{b}` "
        f"(category `{args.category}`, 60 training images, 128 px). Machine: {platform.machine()}, "
        f"{os.cpu_count()} cores, {args.threads} threads, torch {torch.__version__}; load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after (1 min).",
        "",
        f"Each method was trained for {a} and for {b} steps; the difference gives the seconds per step, the "
        "rest the fixed cost, and both together the time of the profile's schedule (an estimate: no run of "
        "the whole schedule was timed here; the benchmark folders record the seconds of the real runs, under "
        "their own load).",
        "",
        "| method | steps | seconds per step | fixed seconds | training seconds (estimated) | minutes |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {m} | {s} | {ps:.3f} | {fx:.1f} | {tot:.0f} | {tot / 60:.1f} |" for m, s, ps, fx, tot in rows]
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
