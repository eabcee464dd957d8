"""BaseDataset and the load-time transforms selected by --preprocess, --load_size, --crop_size and --no_flip."""
import random
from abc import ABC, abstractmethod

import numpy as np
import torch.utils.data as data
from PIL import Image

from util.images import from_uint8

ORIENTATION = 0x0112  # the EXIF tag; values 5 to 8 turn the image by 90 degrees


class BaseDataset(data.Dataset, ABC):
    """Subclasses implement __len__ and __getitem__, and may add options in modify_commandline_options."""

    def __init__(self, opt):
        self.opt = opt
        self.root = opt.dataroot

    @staticmethod
    def modify_commandline_options(parser, is_train):
        return parser

    @abstractmethod
    def __len__(self):
        """Number of items."""

    @abstractmethod
    def __getitem__(self, index):
        """A dict with the image tensors and their paths."""


def get_transform(opt, method=Image.BICUBIC, crop=True, flip=True):
    """transform(img, rng) -> tensor in [-1, 1]: resize or scale-width, then a random crop and flip drawn from rng
    (a random.Random), as --preprocess, --load_size, --crop_size and --no_flip ask."""
    def transform(img, rng):
        if 'resize' in opt.preprocess:
            img = img.resize((opt.load_size, opt.load_size), method)
        elif 'scale_width' in opt.preprocess:
            img = scale_width(img, opt.load_size, opt.crop_size, method)
        if crop and 'crop' in opt.preprocess:
            img = random_crop(img, opt.crop_size, rng)
        if flip and not opt.no_flip and rng.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        return from_uint8(np.asarray(img))

    return transform


def item_rng(key):
    """The random generator of one item: keys (seed, epoch, index) from the data loader's sampler make every
    random choice of an epoch reproducible, whatever the number of workers and wherever a run was resumed."""
    return random.Random(repr(key))


def scale_width(img, target_width, crop_size, method=Image.BICUBIC):
    """Resize to target_width, keeping the aspect ratio, with a height of at least crop_size."""
    size = scaled_width_size(*img.size, target_width, crop_size)
    return img if size == img.size else img.resize(size, method)


def scaled_width_size(width, height, target_width, crop_size):
    return target_width, int(max(target_width * height / width, crop_size))


def loaded_size(path, opt):
    """(width, height) of the image at path once loaded and resized as --preprocess asks, before any crop (read
    from the file's header, EXIF orientation included); None when the header cannot be read."""
    try:
        with Image.open(path) as img:
            width, height = img.size[::-1] if img.getexif().get(ORIENTATION, 1) in (5, 6, 7, 8) else img.size
    except Exception:
        return None
    if 'resize' in opt.preprocess:
        return opt.load_size, opt.load_size
    if 'scale_width' in opt.preprocess:
        return scaled_width_size(width, height, opt.load_size, opt.crop_size)
    return width, height


def random_crop(img, size, rng):
    """A random size x size crop; an image smaller than that is first enlarged (bicubic) to cover it."""
    w, h = img.size
    if w < size or h < size:
        scale = size / min(w, h)
        w, h = max(size, round(w * scale)), max(size, round(h * scale))
        img = img.resize((w, h), Image.BICUBIC)
    x, y = rng.randint(0, w - size), rng.randint(0, h - size)
    return img.crop((x, y, x + size, y + size))
