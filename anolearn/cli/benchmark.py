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
keeps its shard. An unsharded benchmark may also be rerun with fewer or more categories (e.g.
to leave out one whose data is broken): cells are found by method and category, so the
finished ones are kept; dropped categories leave the tables but stay in ``results.csv``.
``results.md`` and the plots are rebuilt from ``results.csv`` at the end.

A cell that fails (a corrupt image, a setting its method refuses, a diverged training) does not
stop the grid: it gets a row with its ``error`` message, the other cells go on, and the next
rerun of the command retries it. ``merge`` writes only into a new folder or one it wrote
before, never into one of its shards (which would then no longer resume) or a folder of
other files.

Each cell is seeded with :func:`~anolearn.seed.run_seed` ``(seed, method, category)``, so it
gives the same numbers whether it runs alone (``train``), in any shard, or in any order.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from ..config import Profile, get_profile
from ..device import describe_device
from .commands import METRICS, RESULT_COLUMNS, evaluate, method_settings, train
from .runs import append_rows, now, read_rows, write_json
from .spec import CliError, check_methods, check_settings, parse_data, parse_device

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


def _open_folder(out_path: Path, plan: dict, log) -> None:
    """Create ``benchmark.json``, or check that the folder holds this benchmark (extending it if allowed)."""
    manifest = out_path / "benchmark.json"
    if out_path.exists() and not out_path.is_dir():
        raise CliError(f"--out {out_path} is a file, not a folder; choose a new --out (a folder to create).")
    if not manifest.exists():
        if out_path.exists() and any(out_path.iterdir()):
            raise CliError(f"{out_path} is not empty and holds no benchmark; choose a new --out.")
        write_json(manifest, {**plan, "created": now(), "machine": describe_device()})
        return
    old = json.loads(manifest.read_text())
    if "merged" in old:
        raise CliError(f"{out_path} holds merged shards (written by merge), not a benchmark run; choose a new --out.")
    diff = [k for k in plan if old.get(k) != plan[k]]
    added = sorted(set(plan["methods"]) - set(old.get("methods", [])))
    dropped = sorted(set(old.get("methods", [])) - set(plan["methods"]))
    categories_changed = "categories" in diff
    if not diff:
        return
    if set(diff) - {"methods", "categories"} or dropped:
        raise CliError(f"{out_path} holds another benchmark (differs in {', '.join(diff)}); "
                       f"choose a new --out, or rerun the same command to resume it "
                       f"(adding methods is allowed: list the old ones first, the new ones last).")
    if categories_changed and plan["shard"] != "0/1":
        raise CliError(f"{out_path} is a shard of a benchmark over other categories; in a sharded benchmark the "
                       f"categories decide which shard runs which cell, so they cannot change: choose a new --out.")
    if added:
        log(f"benchmark: extending {out_path} with {', '.join(added)}")
    if categories_changed:
        gone = sorted(set(old.get("categories", [])) - set(plan["categories"]))
        new = sorted(set(plan["categories"]) - set(old.get("categories", [])))
        log(f"benchmark: categories of {out_path} now {', '.join(plan['categories'])}"
            + (f" (left out: {', '.join(gone)}; their finished cells stay in results.csv)" if gone else "")
            + (f" (added: {', '.join(new)})" if new else ""))
    write_json(manifest, {**old, "methods": plan["methods"], "categories": plan["categories"], "extended": now()})


def _one_line(err: BaseException) -> str:
    text = str(err) if isinstance(err, CliError) else f"{type(err).__name__}: {err}"
    return " ".join(text.split())


def run_benchmark(methods: list[str], data: str, out: str, profile: Profile | None = None,
                  overrides: dict | None = None, shard: str | None = None, device: str | None = None,
                  progress: bool = True, log=print) -> pd.DataFrame:
    """Run (or resume) every cell of this shard and write the tables.

    Every input (methods, data, shard, device, each method's settings, the folder) is checked
    before anything is written. A cell that fails is recorded with its ``error`` and the grid
    goes on; a rerun retries it.

    Returns:
        The latest row of every cell of the grid in ``results.csv`` (failed ones included), as a DataFrame.
    """
    profile = profile or get_profile()
    check_methods(methods)
    spec = parse_data(data, profile, many=True)
    index, count = parse_shard(shard)
    parse_device(device)
    out_path = Path(out).expanduser()
    cells = grid(methods, list(spec.categories))
    for method in dict.fromkeys(m for m, _ in cells):  # a bad --set is found now, not at its first cell
        check_settings(method, method_settings(method, profile, overrides if method not in REFERENCE_METHODS else None))
    mine = cells[index::count]
    plan = {"methods": sorted({m for m, _ in cells}), "data": spec.source, "categories": list(spec.categories),
            "profile": profile.name, "image_size": profile.image_size, "seed": profile.seed,
            "overrides": overrides or {}, "shard": f"{index}/{count}"}
    plan = json.loads(json.dumps(plan))
    _open_folder(out_path, plan, log)

    results = out_path / "results.csv"
    latest = {(r["method"], r["category"]): r for r in read_rows(results)}
    todo = [cell for cell in mine if cell not in latest or latest[cell].get("error")]
    retried = sum(cell in latest for cell in todo)
    log(f"benchmark: {len(mine)} cells in shard {index}/{count} ({len(mine) - len(todo)} already done"
        + (f", {retried} failed before: retrying" if retried else "")
        + f"), profile {profile.name}, {profile.image_size} px, seed {profile.seed}")
    for k, (method, category) in enumerate(todo, 1):
        cell_dir = out_path / "cells" / f"{method}__{category}"
        log(f"[{k}/{len(todo)}] {method} on {spec.label(category)}")
        settings = overrides if method not in REFERENCE_METHODS else None
        try:
            train(method, spec, str(cell_dir), profile=profile, overrides=settings, device=device,
                  progress=progress, category=category, check_test=True)
            row = evaluate(str(cell_dir), profile=profile, device=device, progress=progress)
            row["error"] = ""
        except Exception as err:  # the grid goes on; the cell is recorded as failed and retried on rerun
            row = {**dict.fromkeys(RESULT_COLUMNS, ""), "method": method, "data": spec.source, "category": category,
                   "profile": profile.name, "image_size": profile.image_size, "seed": profile.seed, "finished": now(),
                   "error": _one_line(err)}
            log(f"    failed: {row['error']}")
        row["settings"] = json.dumps(method_settings(method, profile, settings, category), default=str)
        append_rows(results, [row])
    table = load_results(results, plan)
    if not table.empty:
        write_report(table, out_path, plan)
    return table


def load_results(path: Path, plan: dict | None = None) -> pd.DataFrame:
    """``results.csv`` as a DataFrame: the latest row of each cell (of ``plan``'s grid, if given)."""
    if not read_rows(path):  # read_rows also drops a torn last row
        return pd.DataFrame()
    table = pd.read_csv(path, dtype={"method": str, "category": str, "error": str, "notes": str})
    table = table.drop_duplicates(subset=["method", "category"], keep="last")
    if plan is not None:
        table = table[table["method"].isin(plan["methods"]) & table["category"].isin(plan["categories"])]
    return table.reset_index(drop=True)


def _failed(table: pd.DataFrame) -> pd.Series:
    if "error" not in table:
        return pd.Series(False, index=table.index)
    return table["error"].fillna("").astype(str).str.len() > 0


def failed_cells(table: pd.DataFrame) -> list[dict]:
    """The failed cells of a results table: ``[{"method", "category", "error"}, ...]``."""
    if table.empty:
        return []
    return table.loc[_failed(table), ["method", "category", "error"]].to_dict("records")


def merge(out: str, shard_dirs: list[str], log=print) -> pd.DataFrame:
    """Join the ``results.csv`` of several shard folders into ``out`` (rows already there are kept).

    ``out`` must be a new (or empty) folder, or one an earlier ``merge`` wrote; never a shard.
    """
    out_path = Path(out).expanduser()
    inputs = [Path(d).expanduser() for d in shard_dirs]
    if out_path.resolve() in {d.resolve() for d in inputs}:
        raise CliError(f"{out_path} is one of the shards being merged; merging into it would leave that shard "
                       f"unable to resume. Merge into a new folder, e.g. {out_path.parent / 'merged'}.")
    if out_path.exists():
        if not out_path.is_dir():
            raise CliError(f"{out_path} is a file; merge into a new folder.")
        mine = out_path / "benchmark.json"
        if mine.exists() and "merged" not in json.loads(mine.read_text()):
            raise CliError(f"{out_path} holds a benchmark run, not merged shards; merging into it would change that "
                           f"run. Merge into a new folder.")
        if not mine.exists() and any(out_path.iterdir()):
            raise CliError(f"{out_path} is not empty and was not written by merge; merge into a new folder.")
    plans, rows = [], []
    for folder in inputs:
        if not (folder / "benchmark.json").exists():
            raise CliError(f"{folder} is not a benchmark folder (no benchmark.json).")
        plans.append(json.loads((folder / "benchmark.json").read_text()))
        rows += read_rows(folder / "results.csv", repair=False)  # a shard may still be running: read only
    keys = ("methods", "data", "categories", "profile", "image_size", "seed", "overrides")
    for plan in plans[1:]:
        diff = [k for k in keys if plan.get(k) != plans[0].get(k)]
        if diff:
            raise CliError(f"the shards differ in {', '.join(diff)}: only shards of one benchmark command can be merged.")
    if not rows:
        raise CliError("none of the shard folders has results yet.")
    if (out_path / "benchmark.json").exists():  # merging into the folder of an earlier merge
        mine = json.loads((out_path / "benchmark.json").read_text())
        diff = [k for k in keys if k != "methods" and mine.get(k) != plans[0].get(k)]
        if diff:
            raise CliError(f"{out_path} holds another benchmark (differs in {', '.join(diff)}); choose a new folder.")
    existing = out_path / "results.csv"
    have = {(r["method"], r["category"]): r for r in read_rows(existing)}
    latest = {(r["method"], r["category"]): r for r in rows}
    new = [r for cell, r in latest.items() if cell not in have or (have[cell].get("error") and
                                                                     r.get("finished") != have[cell].get("finished"))]
    append_rows(existing, new)
    plan = {**plans[0], "shard": "merged from " + ", ".join(str(d) for d in inputs)}
    write_json(out_path / "benchmark.json", {**plan, "merged": now()})  # the latest merge's methods and shards
    table = load_results(existing, plan)
    expected = len(grid(plans[0]["methods"], plans[0]["categories"]))
    log(f"merge: {len(new)} new rows; {len(table) - len(failed_cells(table))} of {expected} cells finished"
        f"{f', {len(failed_cells(table))} failed' if failed_cells(table) else ''} in {existing}")
    write_report(table, out_path, plan)
    return table


def summary_tables(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """``{"mean": methods x (metrics + costs)}`` plus one methods x categories table per metric
    (failed cells left out)."""
    table = table[~_failed(table)]
    out = {"mean": table.groupby("method", sort=False)[list(METRICS) + list(COST_COLUMNS)].mean()}
    for metric in METRICS:
        out[metric] = table.pivot_table(index="method", columns="category", values=metric, sort=False)
    return out


def write_report(table: pd.DataFrame, out_path: Path, plan: dict) -> None:
    """Write ``results.md`` (with the exact settings) and bar plots per metric into ``out_path``."""
    import matplotlib

    from ..metrics import to_markdown

    tables = summary_tables(table)
    failed = failed_cells(table)
    lines = [
        "# Benchmark results", "",
        f"Data `{plan['data']}`, profile `{plan['profile']}` ({plan['image_size']} px), seed {plan['seed']}, "
        f"shard {plan.get('shard', '0/1')}. Machine: {plan.get('machine', describe_device())}.", "",
        f"{len(table) - len(failed)} cells finished"
        + (f", {len(failed)} failed (listed at the end, left out of every table)" if failed else "")
        + ". Metrics are means over the finished categories; costs per category: training seconds, "
        "inference images per second, peak memory in MB (CUDA allocator on a GPU, process RSS on a CPU).", "",
        to_markdown(tables["mean"]), "",
    ]
    for metric in METRICS:
        lines += [f"## {metric} per category", "", to_markdown(tables[metric]), ""]
    notes = table[~_failed(table)].get("notes")
    if notes is not None and notes.fillna("").astype(str).str.len().any():
        lines += ["## Notes", ""]
        lines += [f"- {r.method} on {r.category}: {r.notes}" for r in table[~_failed(table)].itertuples()
                  if isinstance(r.notes, str) and r.notes]
        lines += [""]
    if failed:
        lines += ["## Failed cells", "", "Rerun the benchmark command to retry them.", ""]
        lines += [f"- {c['method']} on {c['category']}: {c['error']}" for c in failed]
        lines += [""]
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
