#!/usr/bin/env python
"""Download the ImageNet weights of ResNet-18 and Wide-ResNet-50-2 into the torch hub cache.

What:     the backbones used by the feature-based methods of the book (PatchCore, PaDiM,
          CutPaste, ...): torchvision's ResNet18_Weights.IMAGENET1K_V1 (about 45 MB) and
          Wide_ResNet50_2_Weights.IMAGENET1K_V1 (about 132 MB), trained on ImageNet-1k.
Where:    <torch.hub.get_dir()>/checkpoints (by default ~/.cache/torch/hub/checkpoints, or
          $TORCH_HOME/hub/checkpoints), under the file names torchvision itself uses, so
          that afterwards torchvision.models.resnet18(weights="IMAGENET1K_V1") loads them
          from disk without any network access.
Checked:  torchvision puts the first hex digits of each file's SHA-256 in its name
          (resnet18-f37072fd.pth); the downloaded file must match them.
Licence:  torchvision is BSD-3-Clause; the weights were trained on ImageNet, whose terms of
          access restrict it to non-commercial research and education -- check them for
          your use.

Useful on machines that are offline later (download once, copy the checkpoints folder),
and on flaky connections: the download resumes where it stopped when run again.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

try:
    import anolearn  # noqa: F401
except ImportError:  # running from a checkout without installing: use the repository's copy
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anolearn.data.download import DownloadError, DownloadInfo, download

MODELS = {
    # name -> (torchvision weight enum class, member)
    "resnet18": ("ResNet18_Weights", "IMAGENET1K_V1"),
    "wide_resnet50_2": ("Wide_ResNet50_2_Weights", "IMAGENET1K_V1"),
}
LICENCE = "BSD-3-Clause (torchvision); trained on ImageNet (check its terms of access)"


def weight_info(model: str) -> DownloadInfo:
    """A :class:`DownloadInfo` for a torchvision weight, read from torchvision's own enum."""
    import torchvision.models

    enum_name, member = MODELS[model]
    weights = getattr(getattr(torchvision.models, enum_name), member)
    filename = weights.url.rsplit("/", 1)[-1]
    match = re.search(r"-([0-9a-f]{6,})\.", filename)  # torch.hub's convention: name-<sha256 prefix>.ext
    mb = weights.meta.get("_file_size")
    return DownloadInfo(
        name=f"{model} {member} weights",
        url=weights.url,
        filename=filename,
        sha256_prefix=match.group(1) if match else None,
        licence=LICENCE,
        page="https://pytorch.org/vision/stable/models.html",
        approx_size=f"about {mb:.0f} MB" if mb else None,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=sorted(MODELS),
                        help="which weights (default: all)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="target folder (default: <torch.hub.get_dir()>/checkpoints)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    import torch.hub

    target = (args.dir or Path(torch.hub.get_dir()) / "checkpoints").expanduser().resolve()
    try:
        for model in args.models:
            info = weight_info(model)
            print(f"{info.name} ({info.size_text}) -> {target}")
            path = download(info, target, progress=not args.no_progress)
            print(f"  {path}")
    except DownloadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted. Run the same command again to resume.", file=sys.stderr)
        return 130

    print(f"\nThe weights are in {target}.")
    if args.dir is not None and target != (Path(torch.hub.get_dir()) / "checkpoints").resolve():
        hub = Path(torch.hub.get_dir()) / "checkpoints"
        print(f"torchvision looks in {hub}; set TORCH_HOME or copy the files there.")
    print("Next, check that torchvision loads them from disk:")
    print("  python -c \"import torchvision; torchvision.models.resnet18(weights='IMAGENET1K_V1'); "
          "print('ok')\"")
    return 0


if __name__ == "__main__":
    sys.exit(main())
