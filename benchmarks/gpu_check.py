#!/usr/bin/env python
"""GPU check: every method of the full profile, briefly, on two synthetic categories at 256 px.

One command for a machine with an NVIDIA GPU. It trains every registered method with the
**full profile's** networks, batch sizes and image size (256 x 256) on the first synthetic
texture and the first synthetic object, each for a **shortened schedule** (below), in mixed
precision, evaluates each on its test split, and writes what it measured to
``benchmarks/results/gpu_check.md``:

* training images per second: normal training images drawn per second of ``fit``
  (``steps x batch_size``, plus AnoSeg's detection-GAN steps; for ``raw_pixel`` and
  ``feature_knn``, which train nothing, the training images read per second). ``fit`` also
  holds each method's own extra work: the density fits of CutPaste/CutSwap, CutSwap's
  saliency maps, SSM's calibration on held-out images, SGSF's retrieval features;
* peak GPU memory of training (torch's allocator peak, ``max_memory_allocated``);
* inference images per second on the test split, and the four metrics of chapter 2.

**The schedules are shortened**: ``--steps`` trained steps per method (default 60; the full
profile trains thousands), AnoSeg's detection GAN ``steps // 2``. The default comes from a
measured run on one NVIDIA H200 (``benchmarks/results/gpu_check.md``): at 200 steps one category
took about 8 minutes, so about 60 steps should fit both in 9 minutes (an estimate from those
timings, not itself measured); whatever the GPU, the time budget below ends the command in
time. Everything else is the full profile's (widths, batch sizes, learning rates, with their
schedule milestones as fractions of the shortened run).
So the metrics say that each method runs and learns something at 256 px, **not** what it
reaches with the full profile; throughput and memory are those of the full profile's
networks. Mixed precision: each method's ``amp=True`` (float16 autocast with gradient
scaling on CUDA). Every run is seeded with ``run_seed(seed, method, category)`` and uses the
library's deterministic settings, as ``python -m anolearn train`` does: this script calls the
same ``train`` and ``evaluate`` functions, so one row is the command
``python -m anolearn train --profile full --method M --data synthetic:C --set steps=200 ... --evaluate``.

Time budget: no cell starts once the command (writing the synthetic data included) would run
past ``--budget-min`` minutes (default 8.5, judged from the cells done so far); the cells left
are listed as not run, so that the whole command ends within about 9 minutes on any GPU.

Examples::

    python benchmarks/gpu_check.py                     # on a CUDA machine: writes benchmarks/results/gpu_check.md
    python benchmarks/gpu_check.py --steps 400         # a longer check
    python benchmarks/gpu_check.py --smoke --out /tmp/gpu_check   # the same code path on the CPU, tiny

Without CUDA the command stops at once (exit status 2) unless ``--smoke`` is given. ``--smoke``
runs the same code on the CPU with the quick profile's small networks, 64 px images, 8
training images and 2 steps, and writes its report into ``--out`` (never into
``benchmarks/results``): it checks the script, it measures nothing about a GPU.
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

try:
    import anolearn  # noqa: F401
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anolearn import __version__
from anolearn.cli.commands import METRICS, evaluate, method_settings, train
from anolearn.config import Profile, get_profile
from anolearn.data.synthetic import CATEGORIES, ensure_synthetic
from anolearn.device import describe_device
from anolearn.methods import METHODS
from anolearn.metrics import to_markdown
from anolearn.seed import seed_everything

RESULTS = Path(__file__).resolve().parent / "results" / "gpu_check.md"
DEFAULT_STEPS = 60
NO_CUDA = ("error: no CUDA GPU is visible to torch here (torch.cuda.is_available() is False); run this check on a "
           "machine with an NVIDIA GPU, or add --smoke to test the script on the CPU.")


@dataclass(frozen=True)
class Plan:
    """What the check runs: profile, device, categories, methods and each method's shortened settings."""

    profile: Profile
    device: str
    categories: tuple[str, ...]
    methods: tuple[str, ...]
    steps: int
    smoke: bool

    def overrides(self, method: str) -> dict:
        """The settings changed from the profile's schedule: the shortened schedule and mixed precision."""
        params = inspect.signature(METHODS[method]).parameters
        out = {}
        if "steps" in params:
            out["steps"] = self.steps
        if "epochs" in params:
            out["epochs"] = None  # the full profile counts epochs for some methods: count steps instead
        if "detector_steps" in params:
            out["detector_steps"] = max(1, self.steps // 2)
        if "amp" in params:
            out["amp"] = True
        return out


def first_texture_and_object() -> tuple[str, str]:
    """The first synthetic texture and the first synthetic object (the two categories the chapters train)."""
    return tuple(next(c for c, info in CATEGORIES.items() if info.kind == kind) for kind in ("texture", "object"))


def make_plan(smoke: bool, steps: int, methods: list[str] | None, categories: list[str] | None = None) -> Plan:
    """The full profile on CUDA; with ``smoke``, the quick profile's networks at 64 px on the CPU."""
    if smoke:
        profile = get_profile("quick", image_size=64, synthetic_size=64, n_train=8, n_test_good=4, n_test_defect=4,
                              synthetic_name="gpu-check-smoke")
        device, steps = "cpu", 2
    else:
        profile = get_profile("full")
        device = "cuda"
    return Plan(profile, device, tuple(categories or first_texture_and_object()), tuple(methods or sorted(METHODS)),
                steps, smoke)


def warm_up(device: str) -> None:
    """One small convolution and matrix product first: CUDA's start-up costs are not billed to the first method.

    The library's deterministic settings come first (as in every run): cuBLAS reads its workspace
    setting when CUDA starts.
    """
    seed_everything(0)
    if device == "cuda":
        x = torch.randn(8, 3, 64, 64, device=device)
        torch.nn.functional.conv2d(x, torch.randn(8, 3, 3, 3, device=device)).sum().item()
        (torch.randn(256, 256, device=device) @ torch.randn(256, 256, device=device)).sum().item()


def images_trained(settings: dict, n_train: int) -> int:
    """Normal training images drawn by ``fit`` (see the module docstring)."""
    steps = settings.get("steps")
    if not steps:
        return n_train
    return int(settings.get("batch_size", 1) * (steps + settings.get("detector_steps", 0)))


def run_cell(plan: Plan, method: str, category: str, folder: Path) -> dict:
    """Train and evaluate one (method, category) cell with the command line's functions."""
    overrides = plan.overrides(method)
    info = train(method, f"synthetic:{category}", str(folder), profile=plan.profile, overrides=overrides,
                 device=plan.device, progress=False, check_test=True)
    row = evaluate(str(folder), profile=plan.profile, device=plan.device, progress=False)
    settings = method_settings(method, plan.profile, overrides, category)
    n_images = images_trained(settings, info["n_train"])
    return {"method": method, "category": category, "steps": settings.get("steps") or "-",
            "batch_size": settings.get("batch_size", "-"), "train_s": info["train_seconds"],
            "train_images_per_s": n_images / info["train_seconds"] if info["train_seconds"] > 0 else float("nan"),
            "train_peak_mb": info["peak_memory_mb"], "memory_kind": info["memory_kind"],
            "infer_images_per_s": row["infer_images_per_s"], **{m: row[m] for m in METRICS}, "status": "ok"}


def run_check(plan: Plan, out: Path, budget_s: float, start: float, log=print) -> tuple[list[dict], float]:
    """Every cell, category by category (so that a cut by the time budget leaves every method one category).

    Returns the rows and the seconds the cells took; ``budget_s`` counts from ``start`` (``time.perf_counter``).
    """
    first = time.perf_counter()
    rows, spent = [], []
    cells = [(m, c) for c in plan.categories for m in plan.methods]
    for k, (method, category) in enumerate(cells, 1):
        elapsed = time.perf_counter() - start
        typical = sum(spent) / len(spent) if spent else 0.0
        if elapsed + typical > budget_s:
            log(f"[{k}/{len(cells)}] {method} on {category}: not run "
                f"({elapsed / 60:.1f} of {budget_s / 60:.1f} min used)")
            rows.append({"method": method, "category": category, "status": "not run: time budget"})
            continue
        log(f"[{k}/{len(cells)}] {method} on {category} ...")
        t0 = time.perf_counter()
        folder = out / f"{method}__{category}"
        try:
            row = run_cell(plan, method, category, folder)
        except Exception as err:  # a failing method is a finding of the check: record it and go on
            row = {"method": method, "category": category, "status": f"failed: {type(err).__name__}: {err}"}
        finally:
            shutil.rmtree(folder, ignore_errors=True)  # full-width checkpoints: hundreds of MB each
            if plan.device == "cuda":
                torch.cuda.empty_cache()
        spent.append(time.perf_counter() - t0)
        rows.append(row)
        if row["status"] == "ok":
            log("    " + ", ".join(f"{m} {row[m]:.3f}" for m in METRICS)
                + f", {row['train_images_per_s']:.1f} training images/s, peak {row['train_peak_mb']:.0f} MB")
        else:
            log(f"    {row['status']}")
    return rows, time.perf_counter() - first


def machine_lines(plan: Plan) -> list[str]:
    lines = [f"- device: {describe_device(torch.device(plan.device))}"]
    if plan.device == "cuda":
        props = torch.cuda.get_device_properties(0)
        lines.append(f"- GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}, "
                     f"cuDNN {torch.backends.cudnn.version()}")
    lines.append(f"- host: {platform.machine()}, {os.cpu_count()} logical CPU cores, "
                 f"Python {platform.python_version()}, anolearn {__version__}")
    return lines


def _formatted(table):
    """Costs with the precision they have (times 0.1 s, images/s 0.1, memory 1 MB), metrics with three decimals."""
    digits = {"train_s": 1, "train_images_per_s": 1, "infer_images_per_s": 1, "train_peak_mb": 0}
    out = table.copy()
    for column in out.columns:
        if column in digits or column in METRICS:
            out[column] = [f"{v:.{digits.get(column, 3)}f}" for v in out[column]]
    return out


def write_report(path: Path, plan: Plan, rows: list[dict], wall_s: float, data_s: float, command: str) -> str:
    import pandas as pd

    full = get_profile("full")
    schedule_rows = []
    for method in plan.methods:
        changed = plan.overrides(method)
        before = {k: plan.profile.schedule(method).get(k, "(default)") for k in changed}
        schedule_rows.append({"method": method, "this check": json.dumps(changed) if changed else "(as the profile)",
                              f"{plan.profile.name} profile": json.dumps(before, default=str) if changed else "-"})
    done = [r for r in rows if r["status"] == "ok"]
    lines = [
        "# GPU check" + (" (smoke run on the CPU: measures nothing about a GPU)" if plan.smoke else ""), "",
        f"Every method with the {plan.profile.name} profile's networks, batch sizes and image size "
        f"({plan.profile.image_size} x {plan.profile.image_size} px) on the synthetic categories "
        f"{', '.join(plan.categories)} ({plan.profile.n_train} training and "
        f"{plan.profile.n_test_good + plan.profile.n_test_defect} test images each), **shortened schedules** "
        f"({plan.steps} steps per method, AnoSeg's detection GAN {max(1, plan.steps // 2)}; the full profile "
        f"trains e.g. CutPaste for {full.schedule('cutpaste').get('steps')} steps), mixed precision (amp=True: "
        "float16 autocast with gradient scaling on CUDA). The metrics show that each method runs end to end at "
        "this size; they are not what the full schedules reach.", "",
        f"- command: `{command}`",
        *machine_lines(plan),
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- wall time: {wall_s / 60:.1f} min for training and evaluation "
        f"({len(done)} of {len(rows)} cells finished), plus {data_s:.0f} s to write the synthetic data (CPU)",
        "",
        "Columns: `train_images_per_s` = normal training images drawn per second of training (steps x batch size; "
        "for raw_pixel and feature_knn the training images read per second); `train_peak_mb` = peak memory of "
        f"training ({'torch CUDA allocator' if plan.device == 'cuda' else 'process RSS, CPU'}); "
        "`infer_images_per_s` on the test split; metrics as in chapter 2.", "",
    ]
    if done:
        table = pd.DataFrame(done).set_index("method")
        per_method = table.groupby(level=0, sort=False).agg(
            {"train_images_per_s": "mean", "train_peak_mb": "max", "infer_images_per_s": "mean",
             **dict.fromkeys(METRICS, "mean")})
        lines += ["## Per method (mean over the categories; peak memory: the larger)", "",
                  to_markdown(_formatted(per_method)), "",
                  "## Per cell", "",
                  to_markdown(_formatted(table[["category", "steps", "batch_size", "train_s", *per_method.columns]])),
                  ""]
    missing = [r for r in rows if r["status"] != "ok"]
    if missing:
        lines += ["## Cells not finished", "", *[f"- {r['method']} on {r['category']}: {r['status']}" for r in missing],
                  ""]
    lines += ["## Settings changed from the profile", "",
              to_markdown(pd.DataFrame(schedule_rows).set_index("method")), ""]
    text = "\n".join(lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                   help=f"training steps per method (default {DEFAULT_STEPS})")
    p.add_argument("--methods", default=None, help="comma-separated subset (default: every registered method)")
    p.add_argument("--categories", default=None,
                   help="comma-separated synthetic categories (default: the first texture and the first object)")
    p.add_argument("--budget-min", type=float, default=8.5,
                   help="start no new cell once the command would run past this many minutes (default 8.5)")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for the run folders (each deleted once evaluated) and, with --smoke, the report "
                        "(default: a temporary folder; with --smoke: runs/gpu_check_smoke)")
    p.add_argument("--report", type=Path, default=None,
                   help=f"where to write the report (default {RESULTS.relative_to(RESULTS.parents[2])}; "
                        "with --smoke: OUT/gpu_check_smoke.md)")
    p.add_argument("--smoke", action="store_true", help="the same code path on the CPU with tiny settings")
    args = p.parse_args(argv)
    if args.steps < 1 or args.budget_min <= 0:
        p.error("--steps must be at least 1 and --budget-min positive.")
    return args


def main(argv: list[str] | None = None) -> int:
    start = time.perf_counter()
    args = parse_args(argv)
    if not args.smoke and not torch.cuda.is_available():
        print(NO_CUDA, file=sys.stderr)
        return 2
    methods = [m.strip() for m in args.methods.split(",")] if args.methods else None
    unknown = [m for m in methods or [] if m not in METHODS]
    if unknown:
        print(f"error: unknown method {', '.join(unknown)}; available: {', '.join(sorted(METHODS))}.", file=sys.stderr)
        return 2
    categories = [c.strip() for c in args.categories.split(",")] if args.categories else None
    unknown = [c for c in categories or [] if c not in CATEGORIES]
    if unknown:
        print(f"error: unknown synthetic category {', '.join(unknown)}; available: {', '.join(CATEGORIES)}.",
              file=sys.stderr)
        return 2
    plan = make_plan(args.smoke, args.steps, methods, categories)
    given = sys.argv[1:] if argv is None else argv
    command = "python benchmarks/gpu_check.py" + (" " + shlex.join(given) if given else "")
    print(f"GPU check: {len(plan.methods)} methods x {len(plan.categories)} categories, {plan.profile.name} profile, "
          f"{plan.profile.image_size} px, {plan.steps} steps per method, "
          f"on {describe_device(torch.device(plan.device))}")

    out = args.out or (Path("runs/gpu_check_smoke") if args.smoke else None)
    report = args.report or (out / "gpu_check_smoke.md" if args.smoke else RESULTS)
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        runs = (out or Path(tmp)) / "runs"
        t0 = time.perf_counter()
        ensure_synthetic(list(plan.categories), profile=plan.profile)  # written once, outside the timed budget
        data_s = time.perf_counter() - t0
        warm_up(plan.device)
        rows, wall_s = run_check(plan, runs, args.budget_min * 60, start)
    write_report(report, plan, rows, wall_s, data_s, command)
    print(f"wrote {report} ({wall_s / 60:.1f} min)")
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
