"""AnoSeg's networks: a generator with two decoders and a discriminator of (image, map) pairs.

Song, Kong, Park, Kim and Kang, "AnoSeg: Anomaly Segmentation Network Using Self-Supervised
Learning" (arXiv 2110.03396, 2021), Table 6 and Figs. 2, 4 and 9.

**Generator** ``G``. The input image ``x`` (3 channels) gets two *coordinate channels*
(Fig. 4, after CoordConv): a row channel ``i`` and a column channel ``j``, each a rank-1
matrix running linearly from -1 to 1,

    i_{hw} = -1 + 2 h / (H - 1),     j_{hw} = -1 + 2 w / (W - 1),     x_5 = concat(x, i, j).

A convolution is translation invariant: it cannot tell where in the image it is. With the
coordinates as extra inputs it can learn that, say, a hole in the middle of a washer is
normal but the same dark disc near the rim is not. A ResNet-18-style encoder maps ``x_5`` to
``512 x H/32 x W/32``; two decoders of identical structure (Table 6: 3x3 convolutions and
4x4 stride-2 transposed convolutions, batch norm, ReLU) turn that code into the
reconstruction ``x_hat`` (3 channels) and the anomaly map ``A_hat`` (1 channel), both ended
by a sigmoid. ``A_hat`` follows the paper's convention: **1 = normal**, 0 = anomalous.

**Discriminator** ``D`` (Table 6): eight 4x4 stride-2 convolutions with LeakyReLU take a
4-channel (image, map) pair of 256 x 256 down to one number. It judges whether a pair is a
real (image, reference map) pair or a generated (reconstruction, predicted map) one; this is
what makes the adversarial loss *conditional*.

Deviations from the paper, and why:

* The encoder is trained from scratch (the paper does not say whether its ResNet-18 was
  ImageNet-pretrained or how a pretrained first layer would take 5 channels, and no
  pretrained ResNet-18 is available offline here). ``width`` scales every channel count of
  encoder, decoders and discriminator (1.0 = Table 6); the quick profile uses a narrow
  network so that a CPU can train it in seconds.
* ``D`` returns a *logit*; the sigmoid of Table 6's last layer is folded into the loss
  (``binary_cross_entropy_with_logits``), which is numerically safer and works under mixed
  precision. :meth:`PairDiscriminator.probability` applies it when the probability is wanted.
* Table 6 is written for 256 x 256. For a smaller power-of-two input the discriminator drops
  middle 512-channel layers so that it still ends at 1 x 1 (128 x 128: seven layers).
* LeakyReLU slope 0.2 (DCGAN's default; the paper does not give it).

The Appendix-A detection generator ``G_AD`` (:class:`DetectorGenerator`) reuses the encoder
and one decoder: it reads an (image, AnoSeg map) pair, 4 channels, and reconstructs the image.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..nn.resnet_block import BasicBlock

LEAKY_SLOPE = 0.2


def coordinate_channels(x: torch.Tensor) -> torch.Tensor:
    """The two coordinate channels of Fig. 4 for a batch shaped like ``x``.

    Args:
        x: ``(B, C, H, W)`` any float tensor; only its shape, device and dtype are used.

    Returns:
        ``(B, 2, H, W)``: channel 0 is the row coordinate ``i`` (constant along a row, -1 at
        the top, 1 at the bottom), channel 1 the column coordinate ``j`` (-1 left, 1 right).
    """
    if x.dim() != 4:
        raise ValueError(f"coordinate_channels expects (B, C, H, W), got shape {tuple(x.shape)}.")
    b, _, h, w = x.shape
    i = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype).view(1, 1, h, 1).expand(b, 1, h, w)
    j = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype).view(1, 1, 1, w).expand(b, 1, h, w)
    return torch.cat([i, j], dim=1)  # (B, 2, H, W)


def add_coordinate_channels(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W) -> (B, C + 2, H, W)``: ``x`` followed by its row and column coordinates."""
    return torch.cat([x, coordinate_channels(x)], dim=1)


def _ch(channels: int, width: float) -> int:
    return max(4, round(channels * width))


class ResNetEncoder(nn.Module):
    """ResNet-18 trunk (stem + four stages of two basic blocks) for any number of input channels.

    Args:
        in_channels: 5 for AnoSeg (RGB + coordinates), 3 without coordinate channels, 4 for ``G_AD``.
        width: channel multiplier; 1.0 gives ResNet-18's 64-128-256-512 channels.
        downsample: number of halvings, 5 = ResNet-18's stride 32. Fewer drop, in this order,
            the stem's max pooling and the strides of stages 4, 3 and 2 (the layers stay).

    Shapes: ``(B, in_channels, H, W) -> (B, 512 * width, H / 2**downsample, W / 2**downsample)``.
    """

    ORDER = ("pool", "stage4", "stage3", "stage2", "stem")  # which halving goes first

    def __init__(self, in_channels: int = 5, width: float = 1.0, downsample: int = 5):
        super().__init__()
        if not 0 <= downsample <= 5:
            raise ValueError(f"downsample must be in 0..5, got {downsample}.")
        off = set(self.ORDER[: 5 - downsample])
        c = [_ch(n, width) for n in (64, 128, 256, 512)]
        self.out_channels, self.downsample = c[3], downsample
        stem = [nn.Conv2d(in_channels, c[0], 7, 1 if "stem" in off else 2, 3, bias=False), nn.BatchNorm2d(c[0]),
                nn.ReLU(inplace=True)]
        if "pool" not in off:
            stem.append(nn.MaxPool2d(3, 2, 1))
        self.stem = nn.Sequential(*stem)
        stages, c_prev = [], c[0]
        for k, c_out in enumerate(c):
            stride = 1 if k == 0 or f"stage{k + 1}" in off else 2
            stages.append(nn.Sequential(BasicBlock(c_prev, c_out, stride), BasicBlock(c_out, c_out, 1)))
            c_prev = c_out
        self.stages = nn.Sequential(*stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))  # (B, 512w, H / 2**downsample, W / 2**downsample)


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


UP_MODES = ("transpose", "resize")


def upsample_layers(c_in: int, c_out: int, mode: str = "transpose") -> list[nn.Module]:
    """One doubling of the resolution: Table 6's 4x4 stride-2 transposed convolution, or a
    nearest-neighbour x2 resize followed by a 3x3 convolution ("resize").

    A 4x4 stride-2 transposed convolution writes every output pixel from a different subset of
    its kernel weights depending on the pixel's parity; until the four subsets agree, the output
    carries a regular grid -- the checkerboard of Odena, Dumoulin and Olah ("Deconvolution and
    Checkerboard Artifacts", Distill 2016). Resizing first and convolving after treats every
    pixel alike, so no grid can appear.
    """
    if mode == "transpose":
        up = [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)]
    elif mode == "resize":
        up = [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False)]
    else:
        raise ValueError(f"up_mode must be one of {UP_MODES}, got {mode!r}.")
    return up + [nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class Table6Decoder(nn.Module):
    """The decoder of Table 6: five (3x3 conv, 4x4 stride-2 transposed conv) pairs, two more
    3x3 convolutions, a sigmoid. Upsamples by 32.

    Table 6 channel counts (width 1.0): conv 512, up 512, conv 256, up 256, conv 128, up 128,
    conv 128, up 128, conv 128, up 128, conv 128, conv ``out_channels``.

    Args:
        in_channels, out_channels: channels of the code and of the output.
        width: channel multiplier (1.0 = Table 6).
        upsample: number of doublings, 5 = Table 6. With fewer, the *first* transposed
            convolutions become 3x3 stride-1 convolutions of the same width (the layer count
            and widths stay those of Table 6).
        up_mode: ``"transpose"`` (Table 6) or ``"resize"`` (nearest x2 + 3x3 conv, no checkerboard).

    Shapes: ``(B, in_channels, h, w) -> (B, out_channels, 2**upsample h, 2**upsample w)`` in [0, 1].
    """

    PAIRS = (512, 256, 128, 128, 128)

    def __init__(self, in_channels: int, out_channels: int, width: float = 1.0, upsample: int = 5,
                 up_mode: str = "transpose"):
        super().__init__()
        if not 0 <= upsample <= 5:
            raise ValueError(f"upsample must be in 0..5, got {upsample}.")
        layers, c_prev = [], in_channels
        for k, n in enumerate(self.PAIRS):
            c = _ch(n, width)
            up = upsample_layers(c, c, up_mode) if k >= 5 - upsample else _conv_bn_relu(c, c)
            layers += _conv_bn_relu(c_prev, c) + up
            c_prev = c
        c_last = _ch(128, width)
        layers += _conv_bn_relu(c_prev, c_last)
        layers += [nn.Conv2d(c_last, out_channels, 3, 1, 1), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


#: EfficientNet-Lite0 block whose output has stride ``2**downsample`` (see :mod:`anolearn.backbones.efficientnet`).
PRETRAINED_BLOCKS = {2: 2, 3: 4, 4: 10, 5: 15}
ENCODERS = ("scratch", "efficientnet_lite0")


class PretrainedCodeEncoder(nn.Module):
    """A frozen ImageNet EfficientNet-Lite0 cut at stride ``2**downsample``, then a trainable 1x1
    convolution (BN, ReLU) to ``512 * width`` channels; the coordinate channels join the features.

    The paper's encoder is a ResNet-18; whether it was ImageNet-pretrained is not stated. A
    from-scratch encoder must learn what an edge or a texture is from a few dozen images; a
    pretrained one already knows, so the decoders only learn *which* features mean "forged".
    No pretrained ResNet-18 installs offline, so we use the book's EfficientNet-Lite0. Its
    weights stay frozen (and are not saved: they are rebuilt from their package). With frozen
    weights the coordinate channels cannot enter the first convolution, so they are concatenated
    to the features instead, at the code's resolution.

    Shapes: ``(B, 3, H, W) -> (B, 512 * width, H / 2**downsample, W / 2**downsample)``.
    """

    def __init__(self, coord_channels: bool = True, width: float = 1.0, downsample: int = 4,
                 pretrained: bool = True):
        super().__init__()
        if downsample not in PRETRAINED_BLOCKS:
            raise ValueError(f"A pretrained encoder needs downsample in {sorted(PRETRAINED_BLOCKS)}, got {downsample}.")
        from ..backbones import get_backbone

        self.coord_channels, self.downsample = coord_channels, downsample
        self.backbone = get_backbone("efficientnet_lite0", layers=(PRETRAINED_BLOCKS[downsample],), pretrained=pretrained)
        c_in = self.backbone.channels()[0] + (2 if coord_channels else 0)
        self.out_channels = _ch(512, width)
        self.adapter = nn.Sequential(*_conv1x1_bn_relu(c_in, self.out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            f = self.backbone(x)[0]  # (B, C, h, w), frozen
        if self.coord_channels:
            f = add_coordinate_channels(f)
        return self.adapter(f)


def _conv1x1_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class AnoSegGenerator(nn.Module):
    """``G``: image -> (reconstruction, anomaly map with 1 = normal).

    Args:
        coord_channels: concatenate the two coordinate channels to the input (the paper); False
            is the ablation, a 3-channel input.
        width: channel multiplier of encoder and decoders (1.0 = Table 6).
        downsample: halvings in the encoder and doublings in each decoder (5 = Table 6).
        up_mode: the decoders' doublings (see :class:`Table6Decoder`).
        encoder: ``"scratch"`` (ResNet-18 layout, random weights, coordinates on the image) or
            ``"efficientnet_lite0"`` (:class:`PretrainedCodeEncoder`, coordinates on its features).
        pretrained: ImageNet weights for the pretrained encoder (False only for tests).

    Shapes: ``(B, 3, H, W) -> ((B, 3, H, W), (B, 1, H, W))`` with ``H, W`` multiples of
    ``2**downsample``.
    """

    def __init__(self, coord_channels: bool = True, width: float = 1.0, downsample: int = 5,
                 up_mode: str = "transpose", encoder: str = "scratch", pretrained: bool = True):
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}.")
        self.coord_channels, self.pretrained_encoder = coord_channels, encoder != "scratch"
        if self.pretrained_encoder:
            self.encoder = PretrainedCodeEncoder(coord_channels, width, downsample, pretrained)
        else:
            self.encoder = ResNetEncoder(5 if coord_channels else 3, width, downsample)
        self.decoder_image = Table6Decoder(self.encoder.out_channels, 3, width, downsample, up_mode)
        self.decoder_map = Table6Decoder(self.encoder.out_channels, 1, width, downsample, up_mode)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_size(x, 2**self.encoder.downsample, "AnoSegGenerator")
        if self.coord_channels and not self.pretrained_encoder:
            x = add_coordinate_channels(x)  # (B, 5, H, W)
        z = self.encoder(x)  # (B, 512w, H/32, W/32)
        return self.decoder_image(z), self.decoder_map(z)


class DetectorGenerator(nn.Module):
    """``G_AD`` of Appendix A: (image, AnoSeg map) -> reconstructed image.

    The paper shows it only as a box in Fig. 9; we reuse AnoSeg's encoder and image decoder
    (our choice). Shapes: ``(B, 3, H, W), (B, 1, H, W) -> (B, 3, H, W)``.
    """

    def __init__(self, width: float = 1.0, downsample: int = 5, up_mode: str = "transpose"):
        super().__init__()
        self.encoder = ResNetEncoder(4, width, downsample)
        self.decoder = Table6Decoder(self.encoder.out_channels, 3, width, downsample, up_mode)

    def forward(self, x: torch.Tensor, normal_map: torch.Tensor) -> torch.Tensor:
        _check_size(x, 2**self.encoder.downsample, "DetectorGenerator")
        return self.decoder(self.encoder(torch.cat([x, normal_map], dim=1)))


def discriminator_channels(image_size: int, width: float = 1.0) -> list[int]:
    """Output channels of the hidden layers of Table 6's discriminator at ``image_size``.

    256 gives Table 6's ``[64, 128, 256, 512, 512, 512, 128]``; each halving of the size drops
    one 512-channel middle layer (128 -> ``[64, 128, 256, 512, 512, 128]``).
    """
    if image_size < 16 or image_size & (image_size - 1):
        raise ValueError(f"The pair discriminator needs a power-of-two image size >= 16, got {image_size}.")
    n_hidden = int(math.log2(image_size)) - 1  # the last 4x4 stride-2 layer goes 2x2 -> 1x1
    widths = [min(64 * 2**k, 512) for k in range(n_hidden - 1)] + [128]
    return [_ch(n, width) for n in widths]


class PairDiscriminator(nn.Module):
    """``D``: a 4-channel (image, map) pair -> one real/fake logit (Table 6).

    Args:
        image_size: side of the square input (a power of two; Table 6 is written for 256).
        in_channels: 3 image channels + 1 map channel.
        width: channel multiplier (1.0 = Table 6).

    ``forward(pair)`` returns logits ``(B,)``; ``features(pair)`` the penultimate layer
    ``(B, F)`` (Appendix A's ``f`` for feature matching); ``probability(pair)`` the sigmoid.
    """

    def __init__(self, image_size: int = 256, in_channels: int = 4, width: float = 1.0):
        super().__init__()
        self.image_size = image_size
        layers, c_prev = [], in_channels
        for k, c in enumerate(discriminator_channels(image_size, width)):
            layers.append(nn.Conv2d(c_prev, c, 4, 2, 1, bias=k == 0))
            if k > 0:  # Table 6: no batch norm after the first layer
                layers.append(nn.BatchNorm2d(c))
            layers.append(nn.LeakyReLU(LEAKY_SLOPE, inplace=True))
            c_prev = c
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(c_prev, 1, 4, 2, 1)  # 2x2 -> 1x1

    def _check(self, pair: torch.Tensor) -> None:
        if pair.dim() != 4 or pair.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f"PairDiscriminator was built for (B, C, {self.image_size}, {self.image_size}) "
                             f"pairs, got {tuple(pair.shape)}.")

    def features(self, pair: torch.Tensor) -> torch.Tensor:
        self._check(pair)
        return self.body(pair).flatten(1)  # (B, 128w * 2 * 2)

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        self._check(pair)
        return self.head(self.body(pair)).flatten()  # (B,) logits

    def probability(self, pair: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self(pair))


def _check_size(x: torch.Tensor, multiple: int, who: str) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{who} expects images (B, 3, H, W), got {tuple(x.shape)}.")
    if x.shape[-2] % multiple or x.shape[-1] % multiple:
        raise ValueError(f"{who}: height and width must be multiples of {multiple} (the encoder downsamples "
                         f"by {multiple} and the decoders upsample by {multiple}), got {tuple(x.shape[-2:])}.")
