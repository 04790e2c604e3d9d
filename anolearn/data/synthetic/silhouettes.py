"""The exact silhouettes of the synthetic training images: the ground truth saliency is measured on.

Every synthetic image is rendered from its own seeded generator (:func:`.writer.image_rng`), and
the renderer returns the part's silhouette with the image (:func:`.render.render_normal`).
Rendering a training image again therefore gives the silhouette of the part in the file on disk,
pixel for pixel -- what chapters 5 and 6 compare saliency maps with. (A texture's "part" is the
whole image.)
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ...config import Profile, get_profile
from .render import render_normal
from .writer import image_rng


def silhouettes(category: str, n: int, profile: Profile | None = None,
                images: torch.Tensor | None = None) -> torch.Tensor:
    """The part's silhouette in each of the first ``n`` training images of a synthetic category.

    Args:
        category: a synthetic category, e.g. ``"washer"``.
        n: how many (training images ``0 .. n-1``).
        profile: whose seed, rendering size and working size (default: :func:`~anolearn.get_profile`).
        images: ``(n, 3, H, W)`` the same images as loaded from disk (e.g. by
            :func:`anolearn.data.first_images`), to check that rendering again gives them; checked
            where the data is written at the working size.

    Returns:
        ``(n, 1, H, W)`` float in {0, 1} on the CPU, at ``profile.image_size`` (nearest-neighbour
        resized from the rendering size).

    Raises:
        ValueError: an image rendered again differs from the loaded one (data written by another
            version of anolearn).
    """
    profile = profile or get_profile()
    out = []
    for i in range(n):
        image, part = render_normal(category, profile.synthetic_size, image_rng(profile.seed, category, "train/good", i))
        if images is not None and profile.synthetic_size == profile.image_size:
            loaded = (images[i].cpu() * 255).round().byte().permute(1, 2, 0).numpy()  # (H, W, 3) as on disk
            if not np.array_equal(image, loaded):
                raise ValueError(f"synthetic {category} training image {i}, rendered again, differs from the file "
                                 f"on disk: it was written by another version of anolearn; rewrite the data with "
                                 f"`python data_scripts/make_synthetic.py --overwrite`.")
        out.append(torch.from_numpy(part)[None].float())
    sil = torch.stack(out)  # (n, 1, s, s) at the rendering size
    if sil.shape[-1] != profile.image_size:
        sil = F.interpolate(sil, size=(profile.image_size,) * 2, mode="nearest")
    return sil


__all__ = ["silhouettes"]
