"""Tiny in-memory data shared by the method tests (not a test module: no tests here)."""
from __future__ import annotations

import torch


def smooth_images(n: int = 8, size: int = 32, seed: int = 0) -> torch.Tensor:
    """``(n, 3, size, size)`` normal images: one left-to-right ramp plus a little noise each."""
    g = torch.Generator().manual_seed(seed)
    base = torch.linspace(0.3, 0.7, size).view(1, 1, 1, size).expand(1, 3, size, size)
    return (base + 0.02 * torch.randn(n, 3, size, size, generator=g)).clamp(0, 1)


class SquareDefects(torch.utils.data.Dataset):
    """A dataset of sample dicts, as ``load_dataset`` returns: image ``i`` is anomalous when
    ``labels[i]`` is 1, its defect the square ``[8:16, 8:16]`` (painted white when ``paint``)."""

    has_masks = True

    def __init__(self, images: torch.Tensor, labels: list[int] | None = None, paint: bool = False):
        self.images, self.paint = images, paint
        self.labels = labels if labels is not None else [0] * len(images)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        mask = torch.zeros(1, *self.images.shape[-2:])
        image = self.images[i].clone() if self.paint else self.images[i]
        if self.labels[i]:
            mask[:, 8:16, 8:16] = 1
            if self.paint:
                image[:, 8:16, 8:16] = 1.0
        return {"image": image, "mask": mask, "label": self.labels[i],
                "defect": "square" if self.labels[i] else "good", "path": f"{i}.png"}
