"""``python -m anolearn``: train, evaluate and compare methods from the command line.

::

    python -m anolearn train --method draem --data synthetic:brick --out runs/draem_brick
    python -m anolearn evaluate --run runs/draem_brick
    python -m anolearn benchmark --methods draem,ssm --data synthetic --out runs/bench [--shard 0/4]
    python -m anolearn merge runs/bench runs/bench_0 runs/bench_1
    python -m anolearn methods

``--profile NAME`` (default: ``ANOLEARN_PROFILE``, else standard) picks image size and
schedules; ``--set KEY=VALUE`` overrides one setting of the method (repeatable). Every bad
input ends with a one-line ``error:`` that says what to do, and exit status 2; it is found
before anything is written. Anything unforeseen also ends in one line (exit status 1);
``ANOLEARN_DEBUG=1`` shows its traceback instead.
"""
from __future__ import annotations

import argparse
import os
import sys

from ..config import PROFILE_NAMES, get_profile
from .spec import CliError, parse_overrides


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m anolearn", description="Train, evaluate and compare anolearn methods.")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp, profile=True):
        if profile:
            sp.add_argument("--profile", choices=PROFILE_NAMES, help="default: ANOLEARN_PROFILE, else standard")
        sp.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: the best available)")
        sp.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")

    t = sub.add_parser("train", help="train one method on one category")
    t.add_argument("--method", required=True, help="a registered method (see `python -m anolearn methods`)")
    t.add_argument("--data", required=True, help="SOURCE:CATEGORY, e.g. synthetic:brick or /data/mvtec:bottle")
    t.add_argument("--out", required=True, help="run folder to create (or resume)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a method setting")
    t.add_argument("--evaluate", action="store_true", help="evaluate on the test split afterwards")
    common(t)

    e = sub.add_parser("evaluate", help="evaluate a trained run on its test split")
    e.add_argument("--run", required=True, help="run folder written by train")
    e.add_argument("--data", help="evaluate on another SOURCE:CATEGORY instead")
    common(e, profile=False)

    b = sub.add_parser("benchmark", help="a grid of methods x categories (reference rows included)")
    b.add_argument("--methods", required=True, help="comma-separated, e.g. draem,ssm (raw_pixel and feature_knn are always added)")
    b.add_argument("--data", default="synthetic", help="SOURCE or SOURCE:CAT1,CAT2 (default: every synthetic category)")
    b.add_argument("--out", required=True, help="benchmark folder (rerun the same command to resume)")
    b.add_argument("--shard", help="I/N: run only every N-th cell starting at I")
    b.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting of the methods")
    common(b)

    m = sub.add_parser("merge", help="join the results of benchmark shards")
    m.add_argument("out", help="folder for the merged table")
    m.add_argument("shards", nargs="+", help="shard folders")

    sub.add_parser("methods", help="list the registered methods")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except CliError as err:
        _error(str(err))
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume (finished cells and checkpoints are kept).",
              file=sys.stderr)
        return 130
    except OSError as err:  # a full disk, a folder without write permission, ...
        if os.environ.get("ANOLEARN_DEBUG"):
            raise
        where = f"{err.filename}: " if err.filename else ""
        _error(f"{where}{err.strerror or err}; fix that (free disk space, permissions) and rerun the same "
               f"command: finished work is kept.")
        return 2
    except Exception as err:  # a bug: one line here, the traceback with ANOLEARN_DEBUG=1
        if os.environ.get("ANOLEARN_DEBUG"):
            raise
        _error(f"unexpected {type(err).__name__}: {err} (rerun with ANOLEARN_DEBUG=1 to see where; please report "
               f"it with that output).")
        return 1


def _error(message: str) -> None:
    print("error: " + " ".join(message.split()), file=sys.stderr)  # one line, whatever the message holds


def _run(args: argparse.Namespace) -> int:
    progress = not getattr(args, "no_progress", False)
    if args.command == "methods":
        from ..methods import METHODS

        for name, cls in sorted(METHODS.items()):
            doc = (cls.__doc__ or "").strip().splitlines()
            print(f"{name:<14} {doc[0] if doc else ''}")
        return 0
    if args.command == "merge":
        from .benchmark import merge

        merge(args.out, args.shards)
        print(f"wrote {args.out}/results.csv, results.md and plots/")
        return 0
    try:
        profile = get_profile(getattr(args, "profile", None), default="standard") if args.command != "evaluate" else None
    except ValueError as err:  # ANOLEARN_PROFILE names no profile
        raise CliError(str(err)) from None
    if args.command == "train":
        from .commands import evaluate, train

        info = train(args.method, args.data, args.out, profile=profile, overrides=parse_overrides(args.set),
                     device=args.device, progress=progress, check_test=args.evaluate)
        verb = "already trained (resumed, nothing to do)" if info["resumed"] else f"trained in {info['train_seconds']:.1f} s"
        if info.get("resumed_from"):
            verb += f" (resumed from its checkpoint at {info['resumed_from']})"
        print(f"{args.method} on {args.data}: {verb}; checkpoint {args.out}/model.pt")
        if args.evaluate:
            _print_row(evaluate(args.out, device=args.device, progress=progress))
        return 0
    if args.command == "evaluate":
        from .commands import evaluate

        _print_row(evaluate(args.run, data=args.data, device=args.device, progress=progress))
        print(f"appended to {args.run}/results.csv")
        return 0
    if args.command == "benchmark":
        from .benchmark import failed_cells, run_benchmark, summary_tables
        from ..metrics import to_markdown

        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        table = run_benchmark(methods, args.data, args.out, profile=profile, overrides=parse_overrides(args.set),
                              shard=args.shard, device=args.device, progress=progress)
        summary = summary_tables(table)["mean"]
        if not summary.empty:
            print(to_markdown(summary))
        print(f"wrote {args.out}/results.csv, results.md and plots/")
        failed = failed_cells(table)
        if failed:
            first = failed[0]
            raise CliError(f"{len(failed)} cell(s) failed and are recorded as failed in {args.out}/results.csv "
                           f"(first: {first['method']} on {first['category']}: {first['error']}); fix the cause and "
                           f"rerun the same command to retry them, or leave a category out with --data "
                           f"SOURCE:CAT1,CAT2 (same --out).")
        return 0
    return 1


def _print_row(row: dict) -> None:
    metrics = ", ".join(f"{k} {row[k]:.3f}" for k in ("image_auroc", "pixel_auroc", "pixel_ap", "aupro")
                        if isinstance(row.get(k), float) and row[k] == row[k])
    print(f"{row['method']} on {row['data']}:{row['category']}: {metrics or 'no metric'}; "
          f"{row['infer_images_per_s']} images/s, peak memory {row['peak_memory_mb']:.0f} MB ({row['memory_kind']})")
    if row.get("notes"):
        print(f"note: {row['notes']}")
