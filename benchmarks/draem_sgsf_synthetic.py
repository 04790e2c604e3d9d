#!/usr/bin/env python
"""DRAEM and SGSF on every synthetic category, with SGSF's ablations on a subset.

Every model gets the same budget: the profile's schedule (``profile.schedule("draem")`` and
``profile.schedule("sgsf")``; in the quick profile both train networks of base width 8 for 200
steps of 8 random 64 px crops on one CPU thread). Variants:

* ``draem``: DRAEM (Perlin + texture forgeries, 1 : 1; reconstruction + discriminative U-Net);
* ``sgsf``: SGSF (SAM forgeries 3 : 1, normal-image guidance from a reconstruction extractor);
* ``sgsf_perlin``: SGSF with DRAEM's masks anywhere instead of SAM;
* ``sgsf_noguide``: SGSF without normal guidance (the segmentation U-Net alone, SAM forgeries);
* ``sgsf_denoise``: SGSF with a denoising extractor (guidance from the forged image itself);
* ``sgsf_mean``: SGSF with guidance averaged over the contrast set at test time (same training).

Metrics at the profile's resolution: image AUROC (DRAEM: max of the mean-filtered map; SGSF: max
of the map), pixel AUROC and pixel AP over all test pixels, AUPRO to FPR 0.3; ``train_s`` is the
wall-clock time of ``fit`` (retrieval/saliency caching included) and ``images_per_s`` the training
throughput. Shared cores make times noisy; the load average is recorded.

Examples::

    OMP_NUM_THREADS=1 python benchmarks/draem_sgsf_synthetic.py                      # draem + sgsf, 7 categories
    OMP_NUM_THREADS=1 python benchmarks/draem_sgsf_synthetic.py --variants sgsf_perlin,sgsf_noguide,sgsf_denoise \\
        --categories wood,hexnut --rows /tmp/ablations.csv --no-write                 # rows only
    python benchmarks/draem_sgsf_synthetic.py --merge /tmp/main.csv /tmp/ablations.csv  # one table from rows

The tables go to ``benchmarks/results/draem_sgsf_synthetic.md`` and ``.csv``.
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
from anolearn.data.synthetic import CATEGORIES
from anolearn.device import describe_device, get_device
from anolearn.methods import DRAEM, SGSF, evaluate, predict_dataset
from anolearn.metrics import to_markdown
from anolearn.seed import run_seed, seed_everything

RESULTS = Path(__file__).resolve().parent / "results" / "draem_sgsf_synthetic"
METRICS = ["image_auroc", "pixel_auroc", "pixel_ap", "aupro"]
VARIANTS = {
    "draem": ("draem", {}),
    "sgsf": ("sgsf", {}),
    "sgsf_perlin": ("sgsf", {"forging": "perlin"}),
    "sgsf_noguide": ("sgsf", {"guidance": False}),
    "sgsf_denoise": ("sgsf", {"extractor": "denoising"}),
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--categories", default=None, help="comma-separated (default: every category)")
    p.add_argument("--variants", default="draem,sgsf", help=f"comma-separated from {list(VARIANTS)}")
    p.add_argument("--seed", type=int, default=None,
                   help="experiment seed (default: the profile's); each run is seeded with "
                        "anolearn.seed.run_seed(seed, method, category), as on the command line")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the book's CPU budget)")
    p.add_argument("--rows", default=None, help="append every result row to this CSV as it is computed")
    p.add_argument("--merge", nargs="+", default=None, help="build the tables from these row CSVs (no training)")
    p.add_argument("--note", default=None, help="a line added to the header (e.g. how the row files were made)")
    p.add_argument("--no-write", action="store_true", help="do not write the results files")
    return p.parse_args(argv)


def kind(category: str) -> str:
    info = CATEGORIES.get(category)
    return getattr(info, "kind", None) or (info.get("kind") if isinstance(info, dict) else "n/a")


def train_and_score(variant: str, category: str, train, test, profile, seed: int, device) -> list[dict]:
    method_name, extra = VARIANTS[variant]
    seed = run_seed(seed, method_name, category)  # the command line's seed; a method's variants share it
    settings = {**profile.schedule(method_name), **extra, "seed": seed}
    seed_everything(seed)
    method = (DRAEM if method_name == "draem" else SGSF)(**settings).to(device)
    start = time.perf_counter()
    method.fit(train, progress=False)
    train_s = time.perf_counter() - start
    rows = []
    tests = [(variant, method)]
    if variant == "sgsf":  # the same model with test-time guidance averaged over the contrast set
        tests.append(("sgsf_mean", None))
    for name, _ in tests:
        if name == "sgsf_mean":
            method.test_guidance = "mean"
        start = time.perf_counter()
        p = predict_dataset(method, test, progress=False)
        metrics = evaluate(method, test, predictions=p)
        rows.append({"variant": name, **{m: metrics[m] for m in METRICS}, "train_s": train_s,
                     "images_per_s": method.timings["images"] / train_s, "eval_s": time.perf_counter() - start})
    return rows


def run(args) -> pd.DataFrame:
    torch.set_num_threads(args.threads)
    profile = get_profile()
    seed = profile.seed if args.seed is None else args.seed
    device = get_device()
    categories = args.categories.split(",") if args.categories else list_categories(profile.dataset, profile)
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    rows = []
    for category in categories:
        train = load_dataset(profile.dataset, category, "train", profile)
        test = load_dataset(profile.dataset, category, "test", profile)
        for variant in variants:
            for row in train_and_score(variant, category, train, test, profile, seed, device):
                row = {"category": category, "kind": kind(category), **row, "load": os.getloadavg()[0]}
                rows.append(row)
                print(f"{category:>8} {row['variant']:>13}: " + ", ".join(f"{m} {row[m]:.3f}" for m in METRICS)
                      + f", {row['images_per_s']:.1f} img/s, train {row['train_s']:.0f} s", flush=True)
                if args.rows:
                    pd.DataFrame([row]).to_csv(args.rows, mode="a", header=not Path(args.rows).exists(), index=False)
    return pd.DataFrame(rows)


def tables(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    out = []
    known = list(CATEGORIES)
    order = sorted(dict.fromkeys(df["category"]), key=lambda c: known.index(c) if c in known else len(known))
    main = [v for v in ("draem", "sgsf", "sgsf_mean") if v in set(df["variant"])]
    cols = METRICS + ["train_s", "images_per_s"]
    for variant in main:
        t = df[df["variant"] == variant].set_index("category").loc[lambda d: [c for c in order if c in d.index]]
        t = t[["kind"] + cols].copy()
        for k in ("texture", "object"):
            part = t[t["kind"] == k]
            if len(part):
                t.loc[f"mean ({k}s)"] = [k] + list(part[cols].mean())
        t.loc["mean (all)"] = ["all"] + list(t[t["kind"].isin(["texture", "object"])][cols].mean())
        t.index.name = "category"
        out.append((f"`{variant}`, per category", t))
    ablation = [v for v in VARIANTS if v not in ("draem",)] + ["sgsf_mean"]
    cats = sorted(set(df.loc[df["variant"].isin(["sgsf_perlin", "sgsf_noguide", "sgsf_denoise"]), "category"]),
                  key=order.index)
    if cats:
        sub = df[df["category"].isin(cats)]
        wide = sub.pivot_table(index="variant", values=METRICS, aggfunc="mean")[METRICS]
        wide = wide.loc[[v for v in ["draem"] + ablation if v in wide.index]]
        wide.index.name = f"variant (mean over {', '.join(cats)})"
        out.append(("Ablations of SGSF (same budget), mean over the categories named", wide))
    return out


def report(df: pd.DataFrame, header: list[str]) -> str:
    body = []
    for title, table in tables(df):
        body += [f"## {title}", "", to_markdown(table.round(3)), ""]
    return "\n".join(header + body)


def main(argv=None) -> None:
    args = parse_args(argv)
    given = sys.argv[1:] if argv is None else argv
    command = "OMP_NUM_THREADS=1 python benchmarks/draem_sgsf_synthetic.py" + (" " + shlex.join(given) if given else "")
    profile = get_profile()
    seed = profile.seed if args.seed is None else args.seed
    load = os.getloadavg()
    torch.set_num_threads(args.threads)
    if args.merge:
        frames = [pd.read_csv(f, comment="#") for f in args.merge]
        df = pd.concat(frames, ignore_index=True)
        load_text = f"{df['load'].min():.2f} to {df['load'].max():.2f} (1-min, after each run;"
    else:
        df = run(args)
        load_text = f"before {load[0]:.2f}; after {os.getloadavg()[0]:.2f} ("
    machine = (f"{describe_device(get_device())}; {platform.processor() or platform.machine()}, "
               f"{os.cpu_count()} logical cores, Python {platform.python_version()}")
    header = [
        "# DRAEM and SGSF on the synthetic dataset", "",
        ("Image AUROC from each method's image score (DRAEM: max of the mean-filtered map; SGSF: max of the map); "
         "pixel AUROC / AP over all test pixels and AUPRO to FPR 0.3 from the unsmoothed map at the profile's "
         "resolution. `train_s` includes SGSF's retrieval and saliency caching."), "",
        f"- command: `ANOLEARN_PROFILE={profile.name} {command}`",
        (f"- profile: {profile.name} ({profile.image_size} x {profile.image_size} px, {profile.n_train} training "
         f"images per category), seed {seed}, {args.threads} torch thread(s)"),
        f"- schedule `draem`: `{profile.schedule('draem')}`",
        f"- schedule `sgsf`: `{profile.schedule('sgsf')}`",
        f"- machine: {machine}",
        f"- load average: {load_text} cores shared with other jobs: times are noisy)",
    ] + ([f"- note: {args.note}"] if args.note else []) + [""]
    text = report(df, header)
    print(text)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        Path(f"{RESULTS}.md").write_text(text)
        with open(f"{RESULTS}.csv", "w") as fh:
            fh.write(f"# command: ANOLEARN_PROFILE={profile.name} {command}\n")
            fh.write(f"# profile: {profile.name}; seed: {seed}; threads: {args.threads}; machine: {machine}\n")
            if args.note:
                fh.write(f"# note: {args.note}\n")
            df.to_csv(fh, index=False, float_format="%.4f")
        print(f"wrote {RESULTS}.md and .csv")


if __name__ == "__main__":
    main()
