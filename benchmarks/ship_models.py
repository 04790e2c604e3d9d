"""Write the small trained models that ship in ``anolearn/shipped/`` (chapters 7 to 11 load them).

Each model is trained with the ``standard`` profile on one synthetic category by the command line,
exactly as a cell of ``python -m anolearn benchmark --profile standard`` trains it (same per-run
seed), so a model can be taken from such a benchmark folder instead of being trained again::

    python benchmarks/ship_models.py                                   # train what is missing (~15 CPU min)
    python benchmarks/ship_models.py --from benchmarks/results/standard_suite/cells
    python benchmarks/ship_models.py --only cutswap                    # one method's models, the others kept

The model is then stored compactly (see :mod:`anolearn.shipped`): float16 weights where float32 would
exceed ``--max-mb``, SGSF's bank of training images and CutSwap's Gaussians left out (recomputed on
loading from the training images). The manifest
records each file's SHA-256, the command that trained it, the training time and machine, and the
model's test metrics measured after compaction, with the float32 model's for comparison.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from anolearn.config import get_profile  # noqa: E402
from anolearn.data import load_dataset  # noqa: E402
from anolearn.methods import evaluate  # noqa: E402
from anolearn.shipped import HERE, MANIFEST, compact_state, load_shipped, manifest, sha256  # noqa: E402

#: (method, category) pairs that ship: per chapter, the texture and the object it trains live
#: (chapters 7 and 8: brick and capsule; chapters 10 and 11 train hexnut live).
MODELS = [(m, c) for m in ("anoseg", "draem", "sgsf") for c in ("brick", "capsule")]
MODELS += [(m, c) for m in ("riad", "ssm") for c in ("brick", "hexnut")]
MODELS += [("cutswap", c) for c in ("brick", "capsule")]  # chapter 9
#: Settings that differ from the standard profile's, per method. CutSwap's standard model fine-tunes the
#: whole EfficientNet-Lite0 (a model file of about 20 MB); the shipped one fine-tunes its last two blocks only,
#: so that the file holds only those (the frozen rest is the package's ImageNet weights).
OVERRIDES = {"cutswap": {"finetune_blocks": 2}}
#: Buffers computed from the training images: left out, rebuilt on loading (the model's ``prepare``).
#: SGSF's are copies of the images; CutSwap's Gaussians have precision matrices that overflow float16.
REBUILD = {"sgsf": ("bank_images", "bank_features"), "cutswap": ("mean", "precision", "shrinkage")}


def train_command(method: str, category: str, out: Path) -> list[str]:
    sets = [a for key, value in OVERRIDES.get(method, {}).items() for a in ("--set", f"{key}={value}")]
    return [sys.executable, "-m", "anolearn", "train", "--method", method, "--data", f"synthetic:{category}",
            "--profile", "standard", *sets, "--out", str(out), "--evaluate", "--no-progress"]


def find_run(method: str, category: str, sources: list[Path]) -> Path | None:
    """A finished run of this (method, category) with the shipped settings (``OVERRIDES``), if any."""
    for source in sources:
        for folder in (source / f"{method}__{category}", source / f"{method}_{category}"):
            if (folder / "model.pt").is_file() and (folder / "train.json").is_file():
                config = json.loads((folder / "run.json").read_text()).get("config", {}) \
                    if (folder / "run.json").is_file() else {}
                if all(config.get(k) == v for k, v in OVERRIDES.get(method, {}).items()):
                    return folder
    return None


def metrics(model, category: str) -> dict[str, float]:
    test = load_dataset("synthetic", category, "test", get_profile("standard"))
    row = evaluate(model, test, progress=False)
    return {k: round(float(row[k]), 4) for k in ("image_auroc", "pixel_auroc", "aupro")}


def reference_metrics(run: Path, method: str, category: str) -> dict[str, float]:
    """The float32 model's metrics: its row in the run's ``results.csv`` (a benchmark cell or a
    ``train --evaluate`` run), else computed."""
    import csv

    rows = list(csv.DictReader(line for line in open(run / "results.csv") if not line.startswith("#"))) \
        if (run / "results.csv").is_file() else []
    if rows:
        return {k: round(float(rows[-1][k]), 4) for k in ("image_auroc", "pixel_auroc", "aupro")}
    from anolearn.methods import load_method

    return metrics(load_method(run / "model.pt"), category)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--from", dest="sources", nargs="*", default=[], type=Path,
                   help="folders holding <method>__<category> run folders (a benchmark's cells/)")
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "ship", help="where missing models are trained")
    p.add_argument("--max-mb", type=float, default=3.0, help="store float16 weights above this size")
    p.add_argument("--only", default=None, help="comma-separated methods to (re)write; the manifest keeps the others")
    args = p.parse_args()

    models = manifest()
    only = set(args.only.split(",")) if args.only else None
    for method, category in MODELS:
        if only is not None and method not in only:
            continue
        run = find_run(method, category, args.sources + [args.runs])
        if run is None:
            run = args.runs / f"{method}_{category}"
            print(f"training {method} on {category} (standard profile) ...", flush=True)
            subprocess.run(train_command(method, category, run), check=True, cwd=ROOT)
        info = json.loads((run / "train.json").read_text())
        payload = torch.load(run / "model.pt", map_location="cpu", weights_only=True)
        drop = REBUILD.get(method, ())
        state = compact_state(payload["state"], half=False, drop=drop)
        with tempfile.TemporaryDirectory() as tmp:
            torch.save({**payload, "state": state}, Path(tmp) / "m.pt")
            half = (Path(tmp) / "m.pt").stat().st_size > args.max_mb * 1e6
        state = compact_state(payload["state"], half=half, drop=drop)
        file = f"{method}_{category}.pt"
        torch.save({**payload, "state": state}, HERE / file)

        reference = reference_metrics(run, method, category)
        entry = {"file": file, "method": method, "category": category, "profile": "standard",
                 "command": " ".join(["python", *train_command(method, category, Path(f"runs/{method}"))[1:]]),
                 "train_seconds": info["train_seconds"], "machine": info["device"], "torch": info["torch"],
                 "stored_as": "float16" if half else "float32", "rebuild": list(drop),
                 "size_bytes": (HERE / file).stat().st_size, "sha256": sha256(HERE / file),
                 "metrics_float32": reference}
        models[f"{method}/{category}"] = entry
        MANIFEST.write_text(json.dumps({"models": models}, indent=1) + "\n")
        train = load_dataset("synthetic", category, "train", get_profile("standard")) if drop else None
        entry["metrics"] = metrics(load_shipped(method, category, train), category)
        MANIFEST.write_text(json.dumps({"models": models}, indent=1) + "\n")
        print(f"{file}: {entry['size_bytes'] / 1e6:.2f} MB ({entry['stored_as']}), trained in "
              f"{info['train_seconds']:.0f} s; {entry['metrics']} (float32: {reference})", flush=True)
    total = sum(e["size_bytes"] for e in models.values())
    print(f"{len(models)} models, {total / 1e6:.1f} MB in all, manifest {MANIFEST.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
