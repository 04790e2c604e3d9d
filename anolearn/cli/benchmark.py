"""``benchmark`` and ``merge``: a grid of methods x categories, one independent job per cell.

::

    python -m anolearn benchmark --methods draem,ssm --data synthetic --out runs/bench
    python -m anolearn benchmark ... --shard 0/4 --out runs/bench_0   # on four machines / a job array
    python -m anolearn merge runs/bench runs/bench_0 runs/bench_1 runs/bench_2 runs/bench_3

The grid always contains the two reference rows, ``raw_pixel`` and ``feature_knn`` (chapter
1): a method that does not beat them has not learned much. Cells are numbered methods-major
and shard ``i/n`` runs cells ``i, i + n, i + 2n, ...``. Each cell trains into
``OUT/cells/METHOD__CATEGORY`` and appends one row to ``OUT/results.csv`` when it finishes;
a rerun of the same command skips finished cells, so an interrupted benchmark resumes where
it stopped. A rerun with *more* methods (one registered since) extends the grid and keeps the
finished cells; list the old methods first and the new ones last, so that every finished cell
keeps its shard. ``results.md`` and the plots are rebuilt from ``results.csv`` at the end.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from ..config import Profile, get_profile
from ..device import describe_device
from .commands import METRICS, evaluate, method_settings, train
from .runs import append_rows, now, read_rows, write_json
from .spec import CliError, check_methods, parse_data

REFERENCE_METHODS = ("raw_pixel", "feature_knn")
COST_COLUMNS = ("train_seconds", "infer_images_per_s", "peak_memory_mb")


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"2/8"`` -> ``(2, 8)``; None -> ``(0, 1)``."""
    if not text:
        return 0, 1
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not match or int(match[2]) < 1 or int(match[1]) >= int(match[2]):
        raise CliError(f"--shard {text}: expected I/N with 0 <= I < N, e.g. --shard 0/4.")
    return int(match[1]), int(match[2])


def grid(methods: list[str], categories: list[str]) -> list[tuple[str, str]]:
    """All cells, methods-major, reference rows first."""
    ordered = list(REFERENCE_METHODS) + [m for m in methods if m not in REFERENCE_METHODS]
    return [(m, c) for m in ordered for c in categories]


def run_benchmark(methods: list[str], data: str, out: str, profile: Profile | None = None,
                  overrides: dict | None = None, shard: str | None = None, device: str | None = None,
                  progress: bool = True, log=print) -> pd.DataFrame:
    """Run (or resume) every cell of this shard and write the tables; returns ``results.csv`` as a DataFrame."""
    profile = profile or get_profile()
    check_methods(methods)
    spec = parse_data(data, profile, many=True)
    index, count = parse_shard(shard)
    out_path = Path(out).expanduser()
    cells = grid(methods, list(spec.categories))
    mine = cells[index::count]
    plan = {"methods": sorted({m for m, _ in cells}), "data": spec.source, "categories": list(spec.categories),
            "profile": profile.name, "image_size": profile.image_size, "seed": profile.seed,
            "overrides": overrides or {}, "shard": f"{index}/{count}"}
    plan = json.loads(json.dumps(plan))
    manifest = out_path / "benchmark.json"
    if manifest.exists():
        old = json.loads(manifest.read_text())
        diff = [k for k in plan if old.get(k) != plan[k]]
        added = sorted(set(plan["methods"]) - set(old.get("methods", [])))
        if diff == ["methods"] and added and set(old.get("methods", [])) <= set(plan["methods"]):
            # More methods than last time (a method registered since): extend the grid, keep the done cells.
            log(f"benchmark: extending {out_path} with {', '.join(added)}")
            write_json(manifest, {**old, "methods": plan["methods"], "extended": now()})
        elif diff:
            raise CliError(f"{out_path} holds another benchmark (differs in {', '.join(diff)}); "
                           f"choose a new --out, or rerun the same command to resume it "
                           f"(adding methods is allowed: list the old ones first, the new ones last).")
    elif out_path.exists() and any(out_path.iterdir()):
        raise CliError(f"{out_path} is not empty and holds no benchmark; choose a new --out.")
    else:
        write_json(manifest, {**plan, "created": now(), "machine": describe_device()})

    results = out_path / "results.csv"
    done = {(r["method"], r["category"]) for r in read_rows(results)}
    todo = [cell for cell in mine if cell not in done]
    log(f"benchmark: {len(mine)} cells in shard {index}/{count} ({len(mine) - len(todo)} already done), "
        f"profile {profile.name}, {profile.image_size} px, seed {profile.seed}")
    for k, (method, category) in enumerate(todo, 1):
        cell_dir = out_path / "cells" / f"{method}__{category}"
        log(f"[{k}/{len(todo)}] {method} on {spec.label(category)}")
        settings = overrides if method not in REFERENCE_METHODS else None
        train(method, spec, str(cell_dir), profile=profile, overrides=settings, device=device,
              progress=progress, category=category)
        row = evaluate(str(cell_dir), profile=profile, device=device, progress=progress)
        row["settings"] = json.dumps(method_settings(method, profile, settings), default=str)
        append_rows(results, [row])
    table = pd.read_csv(results) if results.exists() else pd.DataFrame()
    if not table.empty:
        write_report(table, out_path, plan)
    return table


def merge(out: str, shard_dirs: list[str], log=print) -> pd.DataFrame:
    """Join the ``results.csv`` of several shard folders into ``out`` (rows already there are kept)."""
    out_path = Path(out).expanduser()
    plans, frames = [], []
    for d in shard_dirs:
        folder = Path(d).expanduser()
        if not (folder / "benchmark.json").exists():
            raise CliError(f"{folder} is not a benchmark folder (no benchmark.json).")
        plan = json.loads((folder / "benchmark.json").read_text())
        plans.append(plan)
        if (folder / "results.csv").exists():
            frames.append(pd.read_csv(folder / "results.csv"))
    keys = ("methods", "data", "categories", "profile", "image_size", "seed", "overrides")
    for plan in plans[1:]:
        diff = [k for k in keys if plan.get(k) != plans[0].get(k)]
        if diff:
            raise CliError(f"the shards differ in {', '.join(diff)}: only shards of one benchmark command can be merged.")
    if not frames:
        raise CliError("none of the shard folders has results yet.")
    if (out_path / "benchmark.json").exists():  # merging into a folder of an earlier merge or run
        mine = json.loads((out_path / "benchmark.json").read_text())
        diff = [k for k in keys if k != "methods" and mine.get(k) != plans[0].get(k)]
        if diff:
            raise CliError(f"{out_path} holds another benchmark (differs in {', '.join(diff)}); choose a new folder.")
    existing = out_path / "results.csv"
    have = {(r["method"], r["category"]) for r in read_rows(existing)}
    new = pd.concat(frames, ignore_index=True).drop_duplicates(subset=["method", "category"], keep="last")
    rows = [r for r in new.to_dict("records") if (r["method"], r["category"]) not in have]
    append_rows(existing, rows)
    table = pd.read_csv(existing)
    plan = {**plans[0], "shard": "merged from " + ", ".join(str(Path(d)) for d in shard_dirs)}
    write_json(out_path / "benchmark.json", {**plan, "merged": now()})  # the latest merge's methods and shards
    expected = len(grid(plans[0]["methods"], plans[0]["categories"]))
    log(f"merge: {len(rows)} new rows; {len(table)} of {expected} cells in {existing}")
    write_report(table, out_path, plan)
    return table


def summary_tables(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """``{"mean": methods x (metrics + costs)}`` plus one methods x categories table per metric."""
    out = {"mean": table.groupby("method", sort=False)[list(METRICS) + list(COST_COLUMNS)].mean()}
    for metric in METRICS:
        out[metric] = table.pivot_table(index="method", columns="category", values=metric, sort=False)
    return out


def write_report(table: pd.DataFrame, out_path: Path, plan: dict) -> None:
    """Write ``results.md`` (with the exact settings) and bar plots per metric into ``out_path``."""
    import matplotlib

    from ..metrics import to_markdown

    tables = summary_tables(table)
    lines = [
        "# Benchmark results", "",
        f"Data `{plan['data']}`, profile `{plan['profile']}` ({plan['image_size']} px), seed {plan['seed']}, "
        f"shard {plan.get('shard', '0/1')}. Machine: {plan.get('machine', describe_device())}.", "",
        f"{len(table)} cells finished. Metrics are means over categories; costs per category: training seconds, "
        "inference images per second, peak memory in MB (CUDA allocator on a GPU, process RSS on a CPU).", "",
        to_markdown(tables["mean"]), "",
    ]
    for metric in METRICS:
        lines += [f"## {metric} per category", "", to_markdown(tables[metric]), ""]
    (out_path / "results.md").write_text("\n".join(lines))

    backend = matplotlib.get_backend()
    import matplotlib.pyplot as plt

    plots = out_path / "plots"
    plots.mkdir(exist_ok=True)
    for metric in METRICS:
        frame = tables[metric].T  # categories x methods
        if frame.isna().all().all():
            continue
        ax = frame.plot.bar(figsize=(max(6, 1.1 * len(frame)), 3.2), width=0.8, rot=0)
        ax.set(ylim=(0, 1), ylabel=metric, title=f"{metric} per category ({plan['profile']} profile)")
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        ax.figure.tight_layout()
        ax.figure.savefig(plots / f"{metric}.png", dpi=110)
        plt.close(ax.figure)
    matplotlib.use(backend)
