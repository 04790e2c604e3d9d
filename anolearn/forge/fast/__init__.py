"""The fast engine of the DRAEM forger: the same forgeries, computed only where they show.

:mod:`anolearn.forge.draem` and :mod:`anolearn.forge.augment` are the forger as chapter 3 teaches
it: dense tensors, every augmentation on whole images, the blend as its formula. This
sub-package gives the same output for the same generator, faster on the CPU, and is used when
``draem_forge(..., engine="fast")`` (or ``engine="auto"`` on the CPU) asks for it. It rests on
three observations:

* **Only the masked pixels are kept.** The augmented source is blended inside the Perlin mask
  only, about 5 % of the pixels on average, so the augmentation is evaluated only there: the
  steps that read whole images (sharpness and rotation read a neighbourhood, autocontrast and
  equalize a histogram) still see whole images, and the pointwise steps after them run on the
  masked pixels alone, packed (:mod:`.chains`, :mod:`.pixels`).
* **uint8 textures repeat their colours.** A texture of the built-in bank is held as a palette
  of distinct colours plus an index, or, when its whole-image steps act channel by channel, as
  tables of its 256 levels per channel, so those steps cost per colour or per level, not per
  pixel (:mod:`.palette`).
* **The source images are independent draws**, so samples that share an operation can be made
  neighbours and processed as one slice. The random parameters are drawn beforehand, in the
  order the plain augmentation draws them, so no reordering changes a draw.

Equal, not just alike: the same random numbers and the same float operations on the same
inputs. The tests compare the two engines sample for sample (``tests/test_forge_engines.py``).
The only differences are in the last bit where torch's vectorised and scalar code paths round
differently (``pow``; ``grid_sample`` outside x86), which a histogram or posterize step can
occasionally carry over to a neighbouring 8-bit level.
"""
from .augment import augment_pixels
from .draem import forge_pixels
from .palette import IndexedImages, Palettes, indexed_textures

__all__ = ["IndexedImages", "Palettes", "augment_pixels", "forge_pixels", "indexed_textures"]
