#!/usr/bin/env python
"""How many forged training images per second: anolearn's forgers, and anomalib's DRAEM forger.

Every self-supervised method of the book forges its training anomalies on the fly, so the
forger must keep up with the network. This script times, on the same input batch:

* ``anolearn`` :class:`~anolearn.forge.DraemForger` with the built-in texture source, Perlin
  noise turned by U(-90, 90) degrees, three of DRAEM's ten augmentations per source,
  ``p_normal = 0.5`` (and once more with DRAEM's image rotation, p = 0.3), with each of its
  two engines: ``plain`` (dense tensors, the code chapter 3 teaches) and ``fast``
  (:mod:`anolearn.forge.fast`: the same forgeries, computed only inside the masks);
* ``anomalib.data.utils.generators.PerlinAnomalyGenerator`` (if anomalib is importable), with
  its defaults (also ``probability = 0.5`` and a noise rotation of U(-90, 90)): once without an
  anomaly source (its fastest path: the noise itself is the texture) and once reading the very
  same textures from a folder of PNG files (like for like: a texture source);
* for reference, anolearn's CutPaste union and AnoSeg's hard augmentation.

Fairness: one seeded input batch for all; a warm-up call each (this also builds the texture
bank, which is then cached); then ``--repeats`` rounds in which every forger runs once, so a
change in machine load hits all of them alike; the median time per batch is reported, with the
spread (min-max) of images per second. Torch threads are set once for everything (``--threads``).

Examples::

    python benchmarks/forge_throughput.py                       # CPU (and CUDA if present)
    python benchmarks/forge_throughput.py --threads 1,2 --repeats 20
    python benchmarks/forge_throughput.py --threads 1 --runs 3     # whole measurement 3 times, pooled
    python benchmarks/forge_throughput.py --no-write            # print only

The markdown table is printed and written to ``benchmarks/results/forge_throughput.md``.
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

try:
    import anolearn
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import anolearn

from anolearn.forge import CutPasteUnion, DraemForger, HardAugment, TextureSource

RESULTS = Path(__file__).resolve().parent / "results" / "forge_throughput.md"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32, help="images per batch (default 32)")
    p.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    p.add_argument("--repeats", type=int, default=10, help="timed rounds per forger (default 10)")
    p.add_argument("--runs", type=int, default=1,
                   help="repeat the whole interleaved measurement this many times; the table pools all rounds (default 1)")
    p.add_argument("--threads", default=None,
                   help="torch threads, or a comma-separated list to time each, e.g. 1,2 (default: torch's default)")
    p.add_argument("--devices", default=None, help="comma-separated, e.g. cpu,cuda (default: cpu, and cuda if present)")
    p.add_argument("--no-anomalib", action="store_true", help="skip anomalib even if it is installed")
    p.add_argument("--no-write", action="store_true", help=f"do not write {RESULTS.name}")
    p.add_argument("--out", type=Path, default=RESULTS, help="where to write the markdown")
    return p.parse_args(argv)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_average() -> str:
    try:
        return ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def write_textures(bank: torch.Tensor, folder: Path) -> None:
    """The texture bank as PNG files, for anomalib's ``anomaly_source_path``."""
    import cv2

    for i, img in enumerate(bank):
        rgb = img.permute(1, 2, 0).numpy()
        cv2.imwrite(str(folder / f"texture_{i:03d}.png"), rgb[:, :, ::-1])


def make_forgers(device: torch.device, size: int, texture_dir: Path | None, use_anomalib: bool) -> dict:
    """name -> callable(images) for every forger to time on ``device``."""
    source = TextureSource()
    gen = torch.Generator(device=device).manual_seed(0)
    forgers = {}
    for engine in ("plain", "fast"):
        draem = DraemForger(source=source, p_normal=0.5, noise_rotation=(-90.0, 90.0), engine=engine)
        draem_rot = DraemForger(source=source, p_normal=0.5, noise_rotation=(-90.0, 90.0), p_rotate=0.3, engine=engine)
        forgers[f"anolearn DraemForger, {engine} engine (textures, noise rotation)"] = \
            lambda x, draem=draem: draem(x, gen)
        forgers[f"anolearn DraemForger, {engine} engine (textures, noise + image rotation p=0.3)"] = \
            lambda x, draem_rot=draem_rot: draem_rot(x, gen)
    cutpaste, hard = CutPasteUnion(), HardAugment()
    if use_anomalib:
        from anomalib.data.utils.generators import PerlinAnomalyGenerator

        plain = PerlinAnomalyGenerator()
        forgers["anomalib PerlinAnomalyGenerator (no source: noise as texture)"] = plain
        if texture_dir is not None:
            folder = PerlinAnomalyGenerator(anomaly_source_path=texture_dir)
            forgers["anomalib PerlinAnomalyGenerator (same textures, PNG folder)"] = folder
    forgers["anolearn CutPasteUnion (reference)"] = lambda x: cutpaste(x, gen)
    forgers["anolearn HardAugment (reference)"] = lambda x: hard(x, gen)
    return forgers


def time_forgers(forgers: dict, images: torch.Tensor, repeats: int) -> dict[str, list[float]]:
    """Seconds per batch for each forger: one warm-up call, then ``repeats`` interleaved rounds."""
    sync = torch.cuda.synchronize if images.is_cuda else (lambda: None)
    times: dict[str, list[float]] = {name: [] for name in forgers}
    for fn in forgers.values():
        fn(images)
    sync()
    for _ in range(repeats):
        for name, fn in forgers.items():
            sync()
            start = time.perf_counter()
            fn(images)
            sync()
            times[name].append(time.perf_counter() - start)
    return times


def speedup(ratio: float) -> str:
    """A speed-up as text. Two decimals, because one would round 4.97x up to "5.0x" (run-to-run
    noise is about 5 %, so the second decimal is no claim of precision)."""
    return f"{ratio:.2f}x"


def table(times: dict[str, list[float]], batch: int, device: str) -> str:
    rates = {name: batch / statistics.median(t) for name, t in times.items()}
    ref = {k: v for k, v in rates.items() if k.startswith("anomalib")}
    lines = ["| device | forger | images/s (median) | min-max | ms per batch | vs anomalib (no source / same textures) |",
             "|---|---|---:|---:|---:|---|"]
    for name, t in times.items():
        lo, hi = batch / max(t), batch / min(t)
        ratio = ""
        if ref and name.startswith("anolearn DraemForger"):
            ratio = " / ".join(speedup(rates[name] / r) for r in ref.values())
        lines.append(f"| {device} | {name} | {rates[name]:.0f} | {lo:.0f}-{hi:.0f} | "
                     f"{1000 * statistics.median(t):.0f} | {ratio} |")
    return "\n".join(lines)


def ratio_summary(times: dict[str, list[float]], batch: int) -> str:
    """The like-for-like DRAEM forgers' (each engine, no image rotation) ratios to each anomalib
    setting, for one run."""
    rates = {name: batch / statistics.median(t) for name, t in times.items()}
    ref = {k: v for k, v in rates.items() if k.startswith("anomalib")}
    ours = [k for k in rates if k.startswith("anolearn DraemForger") and "image rotation" not in k]
    if not ref or not ours:
        return "no anomalib"
    return "; ".join(f"{k.split(', ')[1].split(' (')[0]} {rates[k]:.0f} images/s, "
                     + " / ".join(speedup(rates[k] / r) for r in ref.values()) for k in ours)


def verdict(times: dict[str, list[float]], batch: int) -> str:
    """One line per anolearn DRAEM forger: its ratio to the slowest and fastest anomalib setting."""
    rates = {name: batch / statistics.median(t) for name, t in times.items()}
    ref = {k: v for k, v in rates.items() if k.startswith("anomalib")}
    if not ref:
        return ""
    lines = []
    for name, rate in rates.items():
        if name.startswith("anolearn DraemForger"):
            ratios = [rate / r for r in ref.values()]
            lines.append(f"- {name}: {speedup(min(ratios))} to {speedup(max(ratios))} anomalib's throughput")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    thread_counts = [int(t) for t in args.threads.split(",")] if args.threads else [torch.get_num_threads()]
    devices = args.devices.split(",") if args.devices else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    use_anomalib = False
    anomalib_version = "not installed"
    if not args.no_anomalib:
        try:
            import anomalib
            from anomalib.data.utils.generators import PerlinAnomalyGenerator  # noqa: F401

            use_anomalib, anomalib_version = True, anomalib.__version__
        except ImportError as err:
            anomalib_version = f"not importable ({err})"

    load_before = load_average()
    sections = []
    with tempfile.TemporaryDirectory() as tmp:
        texture_dir = None
        if use_anomalib:
            texture_dir = Path(tmp)
            write_textures(TextureSource().bank(args.size, args.size), texture_dir)
        for threads in thread_counts:
            torch.set_num_threads(threads)
            for name in devices:
                device = torch.device(name)
                torch.manual_seed(0)  # anomalib draws from torch's global generator
                images = torch.rand(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
                forgers = make_forgers(device, args.size, texture_dir, use_anomalib)
                times: dict[str, list[float]] = {k: [] for k in forgers}
                per_run = []
                for run in range(args.runs):  # whole measurement repeated: load changes between runs
                    run_times = time_forgers(forgers, images.to(device), args.repeats)
                    for k, v in run_times.items():
                        times[k] += v
                    per_run.append(f"  - run {run + 1} (load {load_average()}): " + ratio_summary(run_times, args.batch))
                md = f"**{name}, {threads} torch thread(s)**\n\n" + table(times, args.batch, name)
                if verdict(times, args.batch):
                    md += "\n\n" + verdict(times, args.batch)
                if args.runs > 1:
                    md += "\n- the same, run by run (median of each run's rounds):\n" + "\n".join(per_run)
                sections.append(md)
                print(md + "\n", flush=True)
    load_after = load_average()

    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0].split("/main/")[-1], *sys.argv[1:]])
    header = [
        "# Forger throughput",
        "",
        f"Batch {args.batch} x 3 x {args.size} x {args.size} float32 (random values; forging cost does not "
        f"depend on content), median of {args.repeats} interleaved rounds"
        + (f" in each of {args.runs} runs (pooled)" if args.runs > 1 else "") + " after one warm-up call each.",
        "",
        f"- command: `{command}`",
        f"- machine: {cpu_name()}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}",
        f"- torch {torch.__version__} (thread counts timed: {', '.join(map(str, thread_counts))}); anomalib {anomalib_version}; "
        f"anolearn imported from `{Path(anolearn.__file__).resolve().parent}`",
        f"- load average (1, 5, 15 min) before: {load_before}; after: {load_after} "
        "(other processes sharing the cores make every number lower and noisier)",
    ]
    if torch.cuda.is_available():
        header.append(f"- GPU: {torch.cuda.get_device_name(0)}")
    text = "\n".join(header) + "\n\n" + "\n\n".join(sections) + "\n"
    if not args.no_write:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
