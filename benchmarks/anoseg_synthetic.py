#!/usr/bin/env python
"""AnoSeg on every synthetic category: metrics, both image scores, training speed, ablations.

Each category gets one AnoSeg model trained with the profile's schedule
(``profile.schedule("anoseg")``) on its normal training images, plus the Appendix-A detection
GAN, so that both image scores come from the same segmentation network: ``image_auroc`` (max of
the Gaussian-smoothed map ``1 - A_hat``) and ``image_auroc_gan`` (the paper's feature-matching
score, alpha = 1, beta = 0.1). Pixel metrics (pixel AUROC, pixel AP, AUPRO to FPR 0.3, F1-max and
IoU at the F1-optimal threshold, optimistic because that threshold is chosen on the test set) are
computed at the profile's working resolution from the unsmoothed map. ``seg_s`` is the
wall-clock time of the segmentation stage, ``images_per_s`` its training throughput (steps x
batch size / seg_s), ``detector_s`` the time of the detection GAN. Shared cores make times noisy.

``--ablations`` also trains the two ablations of the paper's techniques (without coordinate
channels, without the adversarial loss) on every category, with the same schedule and the same
seed as the full method on that category (``run_seed(seed, "anoseg", category)``).

Examples::

    python benchmarks/anoseg_synthetic.py                              # quick profile, all categories
    python benchmarks/anoseg_synthetic.py --ablations                  # + both ablations
    python benchmarks/anoseg_synthetic.py --categories brick,washer --no-write

The tables are printed and written to ``benchmarks/results/anoseg_synthetic.md`` and ``.csv``
(with the command, profile, schedule, seed and machine).
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
from anolearn.methods import AnoSeg, evaluate, predict_dataset
from anolearn.metrics import image_auroc, to_markdown
from anolearn.seed import run_seed, seed_everything

RESULTS = Path(__file__).resolve().parent / "results" / "anoseg_synthetic"
METRICS = ["image_auroc", "image_auroc_gan", "pixel_auroc", "pixel_ap", "aupro", "iou_at_f1"]
VARIANTS = {"anoseg": {}, "no_coord": {"coord_channels": False}, "no_adv": {"adversarial": False}}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--categories", default=None, help="comma-separated (default: every category of the dataset)")
    p.add_argument("--ablations", action="store_true", help="also train without coordinate channels / adversarial loss")
    p.add_argument("--seed", type=int, default=None,
                   help="experiment seed (default: the profile's); each run is seeded with "
                        "anolearn.seed.run_seed(seed, method, category), as on the command line")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the book's CPU budget)")
    p.add_argument("--no-write", action="store_true", help="print only")
    return p.parse_args(argv)


def train_and_score(variant: str, train, test, settings: dict, device: torch.device) -> dict:
    seed_everything(settings["seed"])
    gan = variant == "anoseg"  # the detection GAN only for the main model
    method = AnoSeg(**{**settings, **VARIANTS[variant], "image_score": "gan" if gan else "map_max"}).to(device)
    start = time.perf_counter()
    method.fit(train, progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    total = time.perf_counter() - start
    p = predict_dataset(method, test, progress=False)
    row = {}
    if gan:
        row["image_auroc_gan"] = image_auroc(p["labels"], p["scores"])
        images = torch.stack([s["image"] for s in test])
        p["scores"] = torch.cat([method.predict(b.to(device), image_score="map_max").scores.cpu()
                                 for b in images.split(32)])
    metrics = evaluate(method, test, predictions=p)
    row.update({m: metrics[m] for m in METRICS if m in metrics})
    seg_s = method.timings["segmenter"]
    row.update(seg_s=seg_s, detector_s=method.timings.get("detector", 0.0), total_s=total,
               images_per_s=method.steps * method.batch_size / seg_s)
    return row


def run(args: argparse.Namespace) -> pd.DataFrame:
    torch.set_num_threads(args.threads)
    profile = get_profile()
    seed = profile.seed if args.seed is None else args.seed
    device = get_device()
    categories = args.categories.split(",") if args.categories else list_categories(profile.dataset, profile)
    variants = list(VARIANTS) if args.ablations else ["anoseg"]
    rows = []
    for category in categories:
        # the command line's seed for (anoseg, category); the ablations share it
        settings = {**profile.schedule("anoseg"), "seed": run_seed(seed, "anoseg", category)}
        train = load_dataset(profile.dataset, category, "train", profile)
        test = load_dataset(profile.dataset, category, "test", profile)
        for variant in variants:
            row = {"category": category, "variant": variant, **train_and_score(variant, train, test, settings, device)}
            rows.append(row)
            print(f"{category:>8} {variant:>8}: " + ", ".join(f"{m} {row[m]:.3f}" for m in METRICS if m in row)
                  + f", {row['images_per_s']:.1f} training images/s, {row['total_s']:.1f} s", flush=True)
    return pd.DataFrame(rows)


def tables(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    order = list(dict.fromkeys(df["category"]))
    main = df[df["variant"] == "anoseg"].set_index("category").loc[order]
    main = main[METRICS + ["seg_s", "detector_s", "images_per_s"]]
    main.loc["mean"] = main.mean()
    out = [("AnoSeg (quick schedule unless stated), per category", main)]
    if df["variant"].nunique() > 1:
        cols = ["image_auroc", "pixel_auroc", "aupro"]
        wide = df.pivot(index="category", columns="variant", values=cols).loc[order]
        wide = wide[[(m, v) for m in cols for v in VARIANTS if v in df["variant"].unique()]]
        wide.loc["mean"] = wide.mean()
        wide.columns = [f"{m} {v}" for m, v in wide.columns]
        out.append(("Ablations: without coordinate channels (no_coord), without the adversarial loss (no_adv)", wide))
    for _, t in out:
        t.index.name = "category"
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    given = sys.argv[1:] if argv is None else argv
    command = "python benchmarks/anoseg_synthetic.py" + (" " + shlex.join(given) if given else "")
    profile = get_profile()
    seed = profile.seed if args.seed is None else args.seed
    load = os.getloadavg()
    df = run(args)
    load_after = os.getloadavg()
    machine = (f"{describe_device(get_device())}; {platform.processor() or platform.machine()}, "
               f"{os.cpu_count()} logical cores, Python {platform.python_version()}")
    header = [
        "# AnoSeg on the synthetic dataset", "",
        ("Image AUROC from the max of the smoothed map (`image_auroc`) and from the Appendix-A detection GAN "
         "(`image_auroc_gan`); pixel metrics from the map `1 - A_hat` at the profile's resolution; IoU at the "
         "F1-optimal threshold is optimistic (threshold chosen on the test set)."), "",
        f"- command: `ANOLEARN_PROFILE={profile.name} {command}`",
        (f"- profile: {profile.name} ({profile.image_size} x {profile.image_size} px, {profile.n_train} training "
         f"images per category), seed {seed}, {args.threads} torch thread(s)"),
        f"- schedule `anoseg`: `{profile.schedule('anoseg')}`",
        f"- machine: {machine}",
        f"- load average before: {load[0]:.2f}; after: {load_after[0]:.2f} (shared cores make times noisy)",
        "",
    ]
    body = []
    for title, table in tables(df):
        body += [f"## {title}", "", to_markdown(table.round(3)), ""]
    text = "\n".join(header + body)
    print(text)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        Path(f"{RESULTS}.md").write_text(text)
        with open(f"{RESULTS}.csv", "w") as fh:
            fh.write(f"# command: ANOLEARN_PROFILE={profile.name} {command}\n")
            fh.write(f"# profile: {profile.name}; seed: {seed}; threads: {args.threads}; "
                     f"schedule: {profile.schedule('anoseg')}; machine: {machine}\n")
            df.to_csv(fh, index=False, float_format="%.4f")
        print(f"wrote {RESULTS}.md and .csv")


if __name__ == "__main__":
    main()
