"""Image transforms: open_clip's train/eval preprocessing for decoded images, and the same steps on
uint8 arrays (the micro suite, the decoded-split cache) done with tensor operations."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

TRAIN_TRANSFORMS = ("none", "openclip")  # data.train_transform: eval preprocessing, or open_clip's train one


def to_model_input(x: np.ndarray, size: int, mean, std) -> torch.Tensor:
    """uint8 [N, H, W] (grayscale) or [N, H, W, 3] -> normalised float [N, 3, size, size]."""
    x = np.ascontiguousarray(x)
    if not x.flags.writeable:  # a memory-mapped cache: torch warns about tensors over read-only memory
        x = x.copy()
    t = torch.from_numpy(x).float().div_(255.0)
    t = t.unsqueeze(1) if t.dim() == 3 else t.permute(0, 3, 1, 2)
    if t.shape[-1] != size or t.shape[-2] != size:
        t = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    if t.shape[1] == 1:
        t = t.expand(-1, 3, -1, -1)
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return ((t - m) / s).contiguous()


class ArrayTransform:
    """uint8 image(s) -> normalised float tensor(s) at `size`; with `augment`, a random resized crop with
    open_clip's default train scale range (0.9, 1.0) first (one draw per image)."""

    def __init__(self, size: int, mean, std, augment: bool = False, scale=(0.9, 1.0)):
        self.size, self.mean, self.std, self.augment, self.scale = size, tuple(mean), tuple(std), augment, tuple(scale)

    def __call__(self, x: np.ndarray) -> torch.Tensor:
        return self.batch(x[None])[0]

    def batch(self, x: np.ndarray) -> torch.Tensor:
        if not self.augment:
            return to_model_input(x, self.size, self.mean, self.std)
        from torchvision.transforms import v2

        crop = v2.RandomResizedCrop(self.size, scale=self.scale, antialias=True)
        t = torch.from_numpy(np.ascontiguousarray(x))
        t = t.unsqueeze(1) if t.dim() == 3 else t.permute(0, 3, 1, 2)
        t = torch.stack([crop(im.float().div(255.0)) for im in t])
        if t.shape[1] == 1:
            t = t.expand(-1, 3, -1, -1)
        m = torch.tensor(self.mean).view(1, 3, 1, 1)
        s = torch.tensor(self.std).view(1, 3, 1, 1)
        return ((t - m) / s).contiguous()

    def key(self) -> str:
        return f"array-{self.size}-{'rrc%g-%g' % self.scale if self.augment else 'resize'}-{self.mean}-{self.std}"


def pil_transform(size: int, mean, std, train: bool):
    """open_clip's preprocessing for a decoded image: train = random resized crop (open_clip's default
    augmentation), eval = resize + centre crop; both then to tensor and normalise."""
    import open_clip

    return open_clip.image_transform(size, is_train=train, mean=tuple(mean), std=tuple(std))


def cache_geometry(size: int):
    """The deterministic part of open_clip's eval preprocessing (bicubic resize of the short side +
    centre crop), which the decoded-split cache stores as uint8."""
    from torchvision import transforms as T

    return T.Compose([T.Resize(size, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(size)])
