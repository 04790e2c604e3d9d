#!/usr/bin/env python
"""RIAD and SSM on every synthetic category: one table of metrics and training times.

Each category gets one RIAD and one SSM model trained with the profile's schedules
(``profile.schedule("riad")``, ``profile.schedule("ssm")``) on its normal training images,
then evaluated on its test split at the profile's working resolution. Columns:

* ``image_auroc``: from each method's default image score (RIAD: max of the smoothed MS-GMS
  map; SSM: max of the map and reconstruction MSE, standardised with held-out normal images);
* ``image_auroc_max``: SSM's max-of-map score alone (RIAD: the same as ``image_auroc``);
* ``image_auroc_official``: SSM's score as its released code computes it (both terms min-max
  normalised over the test set: uses test-set statistics, no labels);
* ``pixel_auroc``, ``aupro`` (to FPR 0.3) from the smoothed map;
* ``*_t1``: SSM's first pass alone (no refinement; image score = max of map), from the same model;
* ``train_s``: wall-clock training time (SSM's includes scoring its held-out images), ``eval_s``
  the time to score the test split. Other processes share the cores: times are noisy.

The CPU budget of the quick profile is the schedules in ``anolearn/config.py``: about 90 s of
training per method and category on one thread of a 2-core machine.

Examples::

    OMP_NUM_THREADS=1 python benchmarks/masking_methods.py                 # quick profile, all categories
    python benchmarks/masking_methods.py --categories brick,washer --no-write
    OMP_NUM_THREADS=1 python benchmarks/masking_methods.py --jobs 2        # two cells at a time, one thread each
    ANOLEARN_PROFILE=full python benchmarks/masking_methods.py             # the papers' schedules (GPU)

The table is printed and written to ``benchmarks/results/masking_methods.md`` and ``.csv`` (quick
profile; ``masking_methods_full.*`` for the full one), with the command, profile, schedules, seed
and machine.
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import pandas as pd
import torch

try:
    import anolearn  # noqa: F401
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anolearn.config import get_profile
from anolearn.data import list_categories, load_dataset
from anolearn.device import describe_device, get_device
from anolearn.methods import RIAD, SSM, evaluate, official_image_scores, predict_dataset
from anolearn.metrics import compute_metrics, image_auroc, to_markdown
from anolearn.seed import run_seed, seed_everything

RESULTS = Path(__file__).resolve().parent / "results"
COLUMNS = ["image_auroc", "image_auroc_max", "image_auroc_official", "pixel_auroc", "aupro", "image_auroc_t1",
           "pixel_auroc_t1", "aupro_t1", "train_s", "eval_s"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--categories", default=None, help="comma-separated (default: every synthetic category)")
    p.add_argument("--methods", default="riad,ssm", help="comma-separated subset of riad,ssm")
    p.add_argument("--seed", type=int, default=None,
                   help="experiment seed (default: the profile's); each run is seeded with "
                        "anolearn.seed.run_seed(seed, method, category), as on the command line")
    p.add_argument("--jobs", type=int, default=1,
                   help="cells trained at the same time, each in its own process with one torch thread (default 1). "
                        "Every cell seeds itself, so the numbers do not depend on this; the times do.")
    p.add_argument("--no-write", action="store_true", help="print only, write no result files")
    p.add_argument("--progress", action="store_true", help="show progress bars")
    return p.parse_args(argv)


def run_one(name: str, category: str, profile, seed: int, device, progress: bool) -> dict:
    train = load_dataset("synthetic", category, "train", profile=profile)
    test = load_dataset("synthetic", category, "test", profile=profile)
    cls = RIAD if name == "riad" else SSM
    seed = run_seed(seed, name, category)  # the command line's seed for this (method, category)
    seed_everything(seed)
    method = cls(seed=seed, **profile.schedule(name)).to(device)
    start = time.perf_counter()
    method.fit(train, progress=progress)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    if name == "riad":
        p = predict_dataset(method, test, progress=progress)
        extra = {"image_auroc_max": None, "image_auroc_official": None, "image_auroc_t1": None,
                 "pixel_auroc_t1": None, "aupro_t1": None}
    else:  # SSM: keep the pieces of its image score and the first pass (no refinement) too
        parts = {k: [] for k in ("scores", "maps", "labels", "masks", "mse", "score_max", "maps_t1")}
        for batch in torch.utils.data.DataLoader(test, batch_size=16):
            passes = method.refine(batch["image"].to(device))  # what predict() runs, every pass kept
            last = passes[-1]
            score_max = last.map.flatten(1).amax(1)
            combined = method.combine_scores(score_max, last.mse)
            parts["scores"].append((combined if method.image_score == "combined" else score_max).cpu())
            parts["maps"].append(last.map.cpu())
            parts["mse"].append(last.mse.cpu())
            parts["score_max"].append(score_max.cpu())
            parts["maps_t1"].append(passes[0].map.cpu())
            parts["labels"].append(batch["label"])
            parts["masks"].append(batch["mask"][:, 0])
        p = {key: torch.cat(value) for key, value in parts.items()}
        t1 = compute_metrics(p["labels"], p["maps_t1"].flatten(1).amax(1), p["masks"], p["maps_t1"])
        extra = {"image_auroc_max": image_auroc(p["labels"], p["score_max"]),
                 "image_auroc_official": image_auroc(p["labels"], official_image_scores(p["maps"], p["mse"])),
                 "image_auroc_t1": t1["image_auroc"], "pixel_auroc_t1": t1["pixel_auroc"], "aupro_t1": t1["aupro"]}
    eval_s = time.perf_counter() - start
    metrics = evaluate(method, test, predictions=p, progress=False)
    row = {"method": name, "category": category, "image_auroc": metrics["image_auroc"], **extra,
           "pixel_auroc": metrics["pixel_auroc"], "aupro": metrics["aupro"], "train_s": train_s, "eval_s": eval_s}
    if name == "riad":
        row["image_auroc_max"] = row["image_auroc"]
    return row


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    profile = get_profile()
    seed = profile.seed if args.seed is None else args.seed
    device = get_device()
    categories = args.categories.split(",") if args.categories else list_categories("synthetic")
    methods = [m.strip() for m in args.methods.split(",")]
    if args.jobs < 1:
        print("error: --jobs must be at least 1.", file=sys.stderr)
        return 2
    cells = [(name, category) for category in categories for name in methods]

    def report(row: dict) -> None:
        print(f"{row['method']:5s} {row['category']:8s} " + "  ".join(
            f"{k} {row[k]:.3f}" if isinstance(row[k], float) else f"{k} -" for k in COLUMNS), flush=True)

    rows = []
    if args.jobs == 1:
        for name, category in cells:
            rows.append(run_one(name, category, profile, seed, device, args.progress))
            report(rows[-1])
    else:  # separate processes (spawned: no state shared with this one), one torch thread each
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.jobs, mp.get_context("spawn"), initializer=torch.set_num_threads,
                                 initargs=(1,)) as pool:
            futures = [pool.submit(run_one, name, category, profile, seed, device, False) for name, category in cells]
            for future in futures:  # in the order of the cells, whatever order they finish in
                rows.append(future.result())
                report(rows[-1])
    df = pd.DataFrame(rows)
    means = df.groupby("method", sort=False)[COLUMNS].mean(numeric_only=True).reset_index()
    means["category"] = "mean"
    df = pd.concat([df, means], ignore_index=True)[["method", "category"] + COLUMNS]
    table = to_markdown(df.set_index("method"), digits=3)
    command = " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).as_posix()] + (argv if argv is not None else sys.argv[1:]))
    header = "\n".join([
        "# RIAD and SSM on the synthetic dataset",
        "",
        f"- command: `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')} ANOLEARN_PROFILE={profile.name} "
        f"python {command}`",
        f"- profile: {profile.name} ({profile.image_size} px, {profile.n_train} training images per category), "
        f"seed {seed}",
        f"- riad schedule: `{profile.schedule('riad')}`",
        f"- ssm schedule: `{profile.schedule('ssm')}`",
        f"- machine: {describe_device(device)}, {os.cpu_count()} CPU cores, {platform.platform()}; "
        f"{time.strftime('%Y-%m-%d')}; times are wall-clock on shared cores (noisy)"
        + (f"; {args.jobs} cells at a time, one torch thread each" if args.jobs > 1 else ""),
        "- image_auroc: default image score (RIAD max of map; SSM max + MSE standardised on held-out normals); "
        "image_auroc_max: max of map; image_auroc_official: SSM's test-set min-max combination; "
        "*_t1: SSM without refinement (first pass, max of map)",
        "",
        "",  # a blank line before the table, or Markdown reads it as part of the last bullet
    ])
    print("\n" + header + table)
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stem = "masking_methods" if profile.name == "quick" else f"masking_methods_{profile.name}"
        (RESULTS / f"{stem}.md").write_text(header + table + "\n")
        df.to_csv(RESULTS / f"{stem}.csv", index=False)
        print(f"\nWrote {RESULTS / stem}.md and .csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
