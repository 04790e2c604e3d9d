#!/usr/bin/env python
"""CutPaste vs CutSwap on every synthetic category, with the same training budget.

Both methods are the same model (:class:`anolearn.methods.CutPasteGDE`: encoder + MLP head,
cross-entropy on {normal, forged}, Gaussian density of normal embeddings at test time, patch-level
maps); only the negatives differ: CutPaste rectangles (``"cutpaste"``) or CutSwap's
saliency-guided patch swaps (``"cutswap"``). Each run uses the profile's schedule
(``profile.schedule("cutpaste")`` / ``("cutswap")``: the same encoder, steps, batch size and
optimiser) and the same normal training images; each (method, category) run has its own seed,
``run_seed(seed, method, category)``, as on the command line. Test metrics: image AUROC from
the image-level density, pixel AUROC, pixel AP and AUPRO (to FPR 0.3) from the patch-level maps,
at the profile's working resolution. Training time is wall-clock on this machine (shared cores
make it noisy) and includes the CutSwap saliency cache and the density fits.

Examples::

    python benchmarks/cutswap_synthetic.py                          # quick profile, all categories
    python benchmarks/cutswap_synthetic.py --categories brick,washer --no-write
    python benchmarks/cutswap_synthetic.py --methods cutpaste:3way,cutswap:cutswap+cutpaste
    python benchmarks/cutswap_synthetic.py --steps 250,1000         # the quick budget and four times it

``--methods`` takes ``name`` or ``name:forger`` items. The table is printed and written to
``benchmarks/results/cutswap_synthetic.md`` and ``.csv`` (with the command, profile, seed and
machine).
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
from anolearn.methods import create_method, evaluate
from anolearn.metrics import to_markdown
from anolearn.seed import run_seed, seed_everything

RESULTS = Path(__file__).resolve().parent / "results" / "cutswap_synthetic"
METRICS = ["image_auroc", "pixel_auroc", "pixel_ap", "aupro"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--categories", default=None, help="comma-separated (default: every category of the dataset)")
    p.add_argument("--methods", default="cutpaste,cutswap",
                   help="comma-separated name or name:forger items (default: cutpaste,cutswap)")
    p.add_argument("--steps", default=None,
                   help="comma-separated training budgets in steps, each run for every method, e.g. 250,1000 "
                        "(default: the profile's schedule)")
    p.add_argument("--seed", type=int, default=None,
                   help="experiment seed (default: the profile's); each run is seeded with "
                        "anolearn.seed.run_seed(seed, method, category), as on the command line")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the book's CPU budget)")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--from-csv", action="store_true",
                   help="train nothing: re-render the markdown table from the existing .csv (keeps its header lines)")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> pd.DataFrame:
    torch.set_num_threads(args.threads)
    profile = get_profile()
    seed = profile.seed if args.seed is None else args.seed
    device = get_device()
    categories = args.categories.split(",") if args.categories else list_categories(profile.dataset, profile)
    budgets = [int(v) for v in args.steps.split(",")] if args.steps else [None]
    rows = []
    for category in categories:
        train = load_dataset(profile.dataset, category, "train", profile)
        test = load_dataset(profile.dataset, category, "test", profile)
        for steps in budgets:
            for item in args.methods.split(","):
                name, _, forger = item.partition(":")
                settings = {**profile.schedule(name), "seed": run_seed(seed, name, category)}
                if forger:
                    settings["forger"] = forger
                if steps is not None:
                    settings["steps"] = steps
                seed_everything(settings["seed"])
                method = create_method(name, **settings).to(device)
                start = time.perf_counter()
                method.fit(train, progress=False)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                seconds = time.perf_counter() - start
                metrics = evaluate(method, test, progress=False)
                h = method.history
                tail = max(1, len(h["accuracy"]) // 10)
                rows.append({"category": category, "method": name, "forger": method.forger_name,
                             "steps": method.steps, **{m: metrics[m] for m in METRICS},
                             "train_acc_end": sum(h["accuracy"][-tail:]) / tail, "train_s": seconds})
                print(f"{category:>8} {name:>8} ({method.forger_name}, {method.steps} steps): "
                      + ", ".join(f"{m} {metrics[m]:.3f}" for m in METRICS)
                      + f", final train accuracy {rows[-1]['train_acc_end']:.2f}, {seconds:.1f} s", flush=True)
    return pd.DataFrame(rows)


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (budget, category) plus a mean row per budget; for each metric, the runs side by side.

    A run is ``method`` (``method:forger`` if the forger is not the method's default).
    """
    default = {"cutpaste": "cutpaste", "cutswap": "cutswap"}
    runs = [m if default.get(m) == f else f"{m}:{f}" for m, f in zip(df["method"], df["forger"])]
    df = df.assign(run=runs)
    order = list(dict.fromkeys(df["category"]))
    run_order = list(dict.fromkeys(runs))
    values = METRICS + ["train_acc_end", "train_s"]
    blocks = []
    for steps, part in df.groupby("steps", sort=True):
        wide = part.pivot(index="category", columns="run", values=values).loc[order]
        wide.loc["mean"] = wide.mean()
        wide.index = pd.MultiIndex.from_product([[steps], wide.index], names=["steps", "category"])
        blocks.append(wide)
    wide = pd.concat(blocks)
    wide = wide[[(metric, run) for metric in values for run in run_order]]
    wide.columns = [f"{metric} {run}" for metric, run in wide.columns]
    wide.index = [f"{c} ({s} steps)" for s, c in wide.index]
    wide.index.name = "category (budget)"
    return wide


LEGEND = ("\n\nColumns: `<metric> <method>`; `train_acc_end` is the classification accuracy on the method's own "
          "training task (normal vs forged) over the last 10 % of the steps; `train_s` is the wall-clock training "
          "time in seconds, saliency cache and density fits included.")


def rerender() -> None:
    """Rewrite the markdown table from the stored .csv, keeping the header lines of the stored .md."""
    df = pd.read_csv(f"{RESULTS}.csv", comment="#")
    old = Path(f"{RESULTS}.md").read_text().splitlines() if Path(f"{RESULTS}.md").is_file() else []
    header = []
    for line in old:
        if line.startswith("|"):
            break
        header.append(line)
    table = to_markdown(summarise(df)) + LEGEND
    while header and not header[-1].strip():
        header.pop()
    text = "\n".join(header + ["", table])
    Path(f"{RESULTS}.md").write_text(text + "\n")
    print(text)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    command = "python benchmarks/cutswap_synthetic.py" + ("" if argv is None and len(sys.argv) == 1 else
                                                           " " + shlex.join(sys.argv[1:] if argv is None else argv))
    if args.from_csv:
        rerender()
        return
    profile = get_profile()
    load = os.getloadavg()
    df = run(args)
    load_after = os.getloadavg()
    wide = summarise(df)
    schedules = {name.partition(":")[0]: profile.schedule(name.partition(":")[0]) for name in args.methods.split(",")}
    header = [
        "# CutPaste vs CutSwap on the synthetic dataset", "",
        "Same model, same training budget; only the negatives differ (each method and category with its own seed, "
        "anolearn.seed.run_seed). Image AUROC from the "
        "image-level Gaussian density, pixel metrics from the patch-level maps, at the profile's resolution.", "",
        f"- command: `ANOLEARN_PROFILE={profile.name} {command}`",
        f"- profile: {profile.name} ({profile.image_size} x {profile.image_size} px, {profile.n_train} training "
        f"images per category), seed {profile.seed if args.seed is None else args.seed}, "
        f"{args.threads} torch thread(s)",
        *[f"- schedule `{k}`: `{v}`" for k, v in schedules.items()],
        f"- machine: {describe_device(get_device())}; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} logical cores, Python {platform.python_version()}",
        f"- load average before: {load[0]:.2f}; after: {load_after[0]:.2f} (shared cores make `train_s` noisy)",
        "",
        "",
    ]
    table = to_markdown(wide) + LEGEND
    print("\n".join(header) + table)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        Path(f"{RESULTS}.md").write_text("\n".join(header) + table + "\n")
        with open(f"{RESULTS}.csv", "w") as fh:
            fh.write(f"# command: ANOLEARN_PROFILE={profile.name} {command}\n")
            fh.write(f"# profile: {profile.name}; seed: {profile.seed if args.seed is None else args.seed}; "
                     f"threads: {args.threads}; machine: {describe_device(get_device())}\n")
            df.to_csv(fh, index=False, float_format="%.4f")
        print(f"wrote {RESULTS}.md and .csv")


if __name__ == "__main__":
    main()
