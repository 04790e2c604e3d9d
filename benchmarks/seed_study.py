#!/usr/bin/env python
"""Several seeds of the standard profile: is a headline method ahead of its predecessor?

One benchmark run is one seed: a method can lead its predecessor by luck. This script trains
every (variant, category, seed) cell with the command line's own ``train`` and ``evaluate``
functions, on the same images (the profile's synthetic dataset, written with its seed 0), with
the training seed ``run_seed(s, method, category)``. One cell is::

    python -m anolearn train --profile standard --method M --data synthetic:C --set seed=<that> --evaluate

and seed 0 is exactly the cell of ``python -m anolearn benchmark --profile standard``. It
reports, per variant, the mean over categories of each metric, averaged over seeds, with its
standard error over seeds; and per pair (headline method minus predecessor) the same for the
difference (:mod:`anolearn.metrics.seeds`). A pair is compared only on the (category, seed)
cells both finished, and the two methods of a pair see the same seed.

Variants: every registered method, plus the two SGSF ablations of chapter 8 (``sgsf_perlin``:
DRAEM's Perlin masks anywhere instead of saliency-guided ones; ``sgsf_noguide``: no normal-image
guidance). Cells are run in the order of ``--variants``, seed by seed, so that a cut by the time
budget leaves whole seeds of the first variants.

Cells run in ``--jobs`` processes at once (each with one torch thread), all on ``--device``.
Each cell writes one JSON row into ``<out>/rows/``, so an interrupted study resumes where it
stopped and ``--report`` rebuilds the tables from whatever rows exist.

Examples::

    python benchmarks/seed_study.py --device cuda --jobs 14 --out /tmp/seeds     # on a GPU machine
    python benchmarks/seed_study.py --report /tmp/seeds --write                   # tables -> benchmarks/results/seed_study.*
    python benchmarks/seed_study.py --smoke --out /tmp/seeds_smoke                # the code path, tiny, on the CPU
"""
from __future__ import annotations

import argparse
import inspect
import json
import multiprocessing as mp
import os
import platform
import re
import shlex
import shutil
import sys
import time
from pathlib import Path

try:
    import anolearn  # noqa: F401
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULTS = Path(__file__).resolve().parent / "results"
METRICS = ("image_auroc", "pixel_auroc", "aupro")

# variant -> (registered method, settings that differ from the profile's schedule)
VARIANTS = {
    "draem": ("draem", {}),
    "anoseg": ("anoseg", {}),
    "riad": ("riad", {}),
    "ssm": ("ssm", {}),
    "sgsf": ("sgsf", {}),
    "sgsf_perlin": ("sgsf", {"forging": "perlin"}),
    "sgsf_noguide": ("sgsf", {"guidance": False}),
    "cutpaste": ("cutpaste", {}),
    "cutswap": ("cutswap", {}),
    "feature_knn": ("feature_knn", {}),
    "raw_pixel": ("raw_pixel", {}),
}
# (headline, predecessor): the comparisons of chapters 7, 8, 9, 11, and chapter 8's ablations
PAIRS = (("anoseg", "draem"), ("sgsf", "draem"), ("cutswap", "cutpaste"), ("ssm", "riad"),
         ("sgsf", "sgsf_perlin"), ("sgsf", "sgsf_noguide"), ("sgsf", "feature_knn"))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default="anoseg,draem,ssm,riad,sgsf,sgsf_perlin,sgsf_noguide,cutswap,cutpaste",
                   help=f"comma-separated, run in this order; from {list(VARIANTS)}")
    p.add_argument("--categories", default=None, help="comma-separated (default: every synthetic category)")
    p.add_argument("--seeds", default="0,1,2", help="profile seeds, comma-separated")
    p.add_argument("--profile", default="standard")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: the best available)")
    p.add_argument("--jobs", type=int, default=1, help="cells at the same time, one process each")
    p.add_argument("--budget-min", type=float, default=None,
                   help="start no cell that would end after this many minutes (judged from the cells done)")
    p.add_argument("--out", default=None, help="folder for runs and rows (rerun to resume)")
    p.add_argument("--keep-runs", action="store_true", help="keep each cell's run folder (default: delete it once evaluated)")
    p.add_argument("--import-log", nargs="+", default=None, metavar="LOG",
                   help="turn the lines a study printed (LOG files) into rows in --out (when only its log came back "
                        "from the machine it ran on); needs --profile and --device-name")
    p.add_argument("--device-name", default=None, help="with --import-log: the device the log was measured on")
    p.add_argument("--name", default="seed_study", help="with --report --write: file name in benchmarks/results")
    p.add_argument("--report", default=None, metavar="OUT", help="only build the tables from OUT's rows")
    p.add_argument("--write", action="store_true", help="with --report: write benchmarks/results/seed_study.*")
    p.add_argument("--note", default="", help="with --report: a line about where and how the rows were measured")
    p.add_argument("--smoke", action="store_true", help="tiny CPU run of the code path (64 px, 2 steps)")
    return p.parse_args(argv)


def cell_name(variant: str, category: str, seed: int) -> str:
    return f"{variant}__{category}__s{seed}"


def run_cell(args: tuple) -> None:
    """Train and evaluate one cell in this process; write its row as JSON (nothing if it exists)."""
    variant, category, seed, out, profile_name, device, smoke, deadline, keep = args
    row_file = Path(out) / "rows" / f"{cell_name(variant, category, seed)}.json"
    if row_file.exists():
        return
    import torch
    torch.set_num_threads(1)
    from anolearn.cli.commands import evaluate, train
    from anolearn.config import get_profile
    from anolearn.methods import METHODS
    from anolearn.seed import run_seed

    # the time budget: a cell whose typical length (the longest of this variant so far) no longer fits is skipped
    typical = _longest_done(Path(out), variant)
    if deadline is not None and time.time() + typical > deadline:
        return
    method, overrides = VARIANTS[variant]
    profile = smoke_profile() if smoke else get_profile(profile_name)
    overrides = dict(overrides)
    # the training seed only: the profile's seed also writes the synthetic images, which stay the same
    if seeded(variant):
        overrides["seed"] = run_seed(seed, method, category)
    if smoke and "steps" in inspect.signature(METHODS[method]).parameters:
        overrides["steps"] = 2
    folder = Path(out) / "runs" / cell_name(variant, category, seed)
    start = time.time()
    info = train(method, f"synthetic:{category}", str(folder), profile=profile, overrides=overrides,
                 device=device, progress=False, check_test=True)
    row = evaluate(str(folder), profile=profile, device=device, progress=False)
    result = {"variant": variant, "method": method, "category": category, "seed": seed, "profile": profile.name,
              **{m: float(row[m]) for m in METRICS}, "train_s": info["train_seconds"],
              "cell_s": time.time() - start, "device": info.get("device", device)}
    row_file.parent.mkdir(parents=True, exist_ok=True)
    row_file.write_text(json.dumps(result))
    if not keep:  # the rows are the result; 200 trained models are not worth the disk
        shutil.rmtree(folder, ignore_errors=True)
    print(f"{cell_name(variant, category, seed)}: " + ", ".join(f"{m} {result[m]:.3f}" for m in METRICS)
          + f", {result['cell_s']:.0f} s", flush=True)


def seeded(variant: str) -> bool:
    """Whether the variant's method draws random numbers (takes a ``seed``)."""
    from anolearn.methods import METHODS
    return "seed" in inspect.signature(METHODS[VARIANTS[variant][0]]).parameters


def smoke_profile():
    from anolearn.config import get_profile
    return get_profile("quick", image_size=64, synthetic_size=64, n_train=8, n_test_good=4, n_test_defect=4,
                       synthetic_name="seed-study-smoke")


def _longest_done(out: Path, variant: str) -> float:
    times = [json.loads(f.read_text())["cell_s"] for f in (out / "rows").glob(f"{variant}__*.json")]
    return max(times) if times else 0.0


def read_rows(out: Path):
    import pandas as pd
    rows = [json.loads(f.read_text()) for f in sorted((out / "rows").glob("*.json"))]
    seeds = sorted({r["seed"] for r in rows})
    # a method without a seed gives the same row for every seed: repeat it, so it pairs with every seed
    rows = [{**r, "seed": s} if not seeded(r["variant"]) else r for r in rows
            for s in (seeds if not seeded(r["variant"]) else [r["seed"]])]
    return pd.DataFrame(rows)


def per_category_table(df):
    """Seed-averaged image / pixel AUROC per variant and category."""
    table = df.groupby(["variant", "category"])[["image_auroc", "pixel_auroc"]].mean()
    wide = table.unstack("category")
    wide.columns = [f"{c} {'img' if m == 'image_auroc' else 'pix'}" for m, c in wide.columns]
    return wide


def report(out: Path, write: bool, note: str, name: str = "seed_study") -> str:
    from anolearn.metrics import to_markdown
    from anolearn.metrics.seeds import seed_pairs, seed_summary
    df = read_rows(out)
    if df.empty:
        raise SystemExit(f"no rows in {out / 'rows'}")
    order = [v for v in VARIANTS if v in set(df.variant)]
    df["variant"] = df.variant.astype("category").cat.set_categories(order)
    df = df.sort_values(["variant", "category", "seed"])
    df["variant"] = df.variant.astype(str)
    devices = ", ".join(sorted(set(map(str, df.device))))
    profiles = sorted(set(df.profile)) if "profile" in df else ["standard"]
    text = "\n".join([
        f"# Several training seeds, {' and '.join(profiles)} profile",
        "",
        f"Every (variant, category, seed) cell is one `python -m anolearn train --profile {profiles[0]} ... --evaluate`"
        " on the profile's synthetic images, with the training seed `--set seed=<run_seed(seed, method, category)>`"
        f" (seed 0 is the cell of `python -m anolearn benchmark --profile {profiles[0]}`), run by"
        " `benchmarks/seed_study.py`; methods without a seed (feature_knn, raw_pixel) run once and count for"
        " every seed. Per variant: the mean over categories of each metric, averaged over"
        " seeds, ± its standard error over seeds. Per pair: the headline method minus its predecessor on the"
        " cells both finished, the same way; in brackets, the categories in which the seed-averaged difference"
        " is positive.",
        "",
        f"- rows: {len(df)} cells; variants {', '.join(order)}; categories {', '.join(sorted(set(df.category)))};"
        f" seeds {', '.join(map(str, sorted(set(df.seed))))}",
        f"- device: {devices}",
        f"- note: {note}" if note else "",
        "",
        "## Per variant",
        "",
        to_markdown(seed_summary(df)),
        "",
        "## Pairs (headline minus predecessor)",
        "",
        to_markdown(seed_pairs(df, PAIRS)) if not seed_pairs(df, PAIRS).empty else "(no pair with both methods finished)",
        "",
        "## Per category (mean over seeds)",
        "",
        to_markdown(per_category_table(df)),
        "",
    ])
    if write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{name}.md").write_text(text)
        df.to_csv(RESULTS / f"{name}.csv", index=False)
    return text


LOG_LINE = re.compile(r"^(?P<variant>\w+?)__(?P<category>\w+)__s(?P<seed>\d+): image_auroc (?P<image_auroc>[\d.]+), "
                      r"pixel_auroc (?P<pixel_auroc>[\d.]+), aupro (?P<aupro>[\d.]+), (?P<cell_s>[\d.]+) s$")


def import_log(logs: list[str], out: Path, profile: str, device: str) -> int:
    """Rows from the lines ``run_cell`` prints (metrics to 3 decimals, as printed); returns how many."""
    n = 0
    for log in logs:
        for line in Path(log).read_text().splitlines():
            match = LOG_LINE.match(line.strip())
            if not match:
                continue
            row = {k: float(v) for k, v in match.groupdict().items() if k not in ("variant", "category", "seed")}
            row = {"variant": match["variant"], "method": VARIANTS[match["variant"]][0], "category": match["category"],
                   "seed": int(match["seed"]), "profile": profile, **row, "device": device,
                   "source": f"log {Path(log).name}"}
            (out / "rows").mkdir(parents=True, exist_ok=True)
            (out / "rows" / f"{cell_name(row['variant'], row['category'], row['seed'])}.json").write_text(json.dumps(row))
            n += 1
    return n


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.import_log:
        if not (args.out and args.device_name):
            raise SystemExit("--import-log needs --out and --device-name")
        print(f"{import_log(args.import_log, Path(args.out), args.profile, args.device_name)} rows written to {args.out}")
        return 0
    if args.report:
        print(report(Path(args.report), args.write, args.note, args.name))
        return 0
    if not args.out:
        raise SystemExit("give --out (a folder for the runs and rows)")
    from anolearn.data.synthetic import CATEGORIES, ensure_synthetic
    from anolearn.config import get_profile
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    categories = args.categories.split(",") if args.categories else list(CATEGORIES)
    seeds = [int(s) for s in args.seeds.split(",")]
    ensure_synthetic(categories, profile=smoke_profile() if args.smoke else get_profile(args.profile))
    deadline = time.time() + 60 * args.budget_min if args.budget_min else None
    # a method without a seed (feature_knn, raw_pixel) gives the same result every time: its first seed only
    cells = [(v, c, s, args.out, args.profile, args.device, args.smoke, deadline, args.keep_runs)
             for v in variants for s in (seeds if seeded(v) else seeds[:1]) for c in categories]
    (Path(args.out) / "rows").mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "command.txt").write_text(
        "python " + " ".join(map(shlex.quote, sys.argv)) + f"\n{platform.node()} {platform.platform()}\n")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.jobs > 1:
        with mp.get_context("spawn").Pool(args.jobs) as pool:
            for _ in pool.imap_unordered(run_cell, cells):
                pass
    else:
        for cell in cells:
            run_cell(cell)
    print(report(Path(args.out), False, "", args.name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
