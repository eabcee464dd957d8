"""Image files: finding them in folders, reading them as 8-bit RGB, writing them, and turning network outputs
(tensors in [-1, 1]) into them."""
import collections
import hashlib
import os
import re

import numpy as np
import torch
from PIL import Image, ImageOps

from util.util import UserError, atomic_write

# bytes an output's name may take: the file system's 255, less test.py's longest suffix (_fake_B.png)
NAME_BYTES = 244
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.tif', '.tiff', '.webp')


def is_image_file(filename):
    return filename.lower().endswith(IMG_EXTENSIONS) and not filename.startswith('.')


def find_images(folder, recursive=True):
    """Sorted paths of the image files in folder (and its subfolders when recursive); other files are ignored."""
    if not recursive:
        return sorted(os.path.join(folder, f) for f in os.listdir(folder) if is_image_file(f))
    return sorted(os.path.join(root, f) for root, _, files in os.walk(folder) for f in files if is_image_file(f))


def images_by_stem(folder, suffix='', what=None):
    """{stem: path} for the images directly in folder whose stem ends with suffix (removed from the key). Where two
    share a stem the first in sorted order wins, unless what names the folder's role (e.g. '--gt'): then the pairing
    is ambiguous and refused, naming both files."""
    found = {}
    for path in find_images(folder, recursive=False):
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem.endswith(suffix):
            key = stem[:len(stem) - len(suffix)] if suffix else stem
            if what and key in found:
                raise UserError('%s %s: %s and %s both pair with the images named %s; keep the one that is meant'
                                % (what, folder, os.path.basename(found[key]), os.path.basename(path), key))
            found.setdefault(key, path)
    return found


def output_names(paths, root):
    """{path: name} for the outputs of input files under root: each file's stem, except where two inputs share a
    stem (x.jpg, x.png, sub/x.png); those are named by their path under root, separators and dots as '_'
    (x_jpg, x_png, sub_x_png), so that every input keeps an output of its own. A name longer than NAME_BYTES is cut
    and ends in '~' and a hash of its path, so that it and its suffixes fit the file system's 255 bytes."""
    stems = {path: os.path.splitext(os.path.basename(path))[0] for path in paths}
    shared = {stem for stem, count in collections.Counter(stems.values()).items() if count > 1}
    names, used = {}, set()
    for path, stem in stems.items():
        name = re.sub(r'[\\/.]', '_', os.path.relpath(path, root)) if stem in shared else stem
        name = fitting(name, os.path.relpath(path, root))
        while name in used:
            name += '_'
        names[path] = name
        used.add(name)
    return names


def fitting(name, key, limit=NAME_BYTES):
    """name, or where it takes more than limit bytes its first whole letters, '~' and a hash of key (what it
    names, e.g. its path), limit bytes in all."""
    if len(os.fsencode(name)) <= limit:
        return name
    while len(os.fsencode(name)) > limit - 9:
        name = name[:-1]
    return name + '~' + hashlib.sha1(os.fsencode(key)).hexdigest()[:8]


def load_rgb(path):
    """An image file as an 8-bit RGB PIL image, EXIF orientation applied (as_rgb)."""
    with Image.open(path) as img:
        return as_rgb(ImageOps.exif_transpose(img))


def as_rgb(img):
    """A PIL image as 8-bit RGB: grayscale, palette, RGBA, CMYK, 16-bit and floating-point images converted (alpha
    is dropped, 16-bit values are scaled to 8 bits, where PIL's own conversion would clip them to white, and floats
    in [0, 1] are scaled by 255, where it would make them black)."""
    if img.mode in ('I', 'I;16', 'I;16L', 'I;16B', 'I;16N', 'F'):
        array = np.asarray(img, dtype=np.float64)
        scale = (1.0 if img.mode == 'F' and array.max() <= 1 else
                 65535.0 if array.max() > 255 or img.mode.startswith('I;16') else 255.0)
        img = Image.fromarray(np.clip(np.round(array / scale * 255.0), 0, 255).astype(np.uint8))
    return img.convert('RGB')


def from_uint8(array):
    """uint8 images (..., H, W, 3) -> a float tensor (..., 3, H, W) in [-1, 1], the inverse of to_uint8 (bit for bit
    what torchvision's ToTensor and Normalize(0.5, 0.5) give)."""
    return torch.from_numpy(np.array(array)).movedim(-1, -3).float() / 127.5 - 1


def to_uint8(batch):
    """A batch in [-1, 1], (N, C, H, W) -> (N, H, W, 3) uint8, rounded; one channel is repeated to three."""
    array = batch.detach().float().cpu().clamp(-1, 1).permute(0, 2, 3, 1).numpy()
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, -1)
    return np.round((array + 1) / 2 * 255).astype(np.uint8)


def save_image(array, path):
    """Write an (H, W, 3) uint8 array as an image file, atomically; the format follows the extension."""
    ext = os.path.splitext(path)[1].lower().lstrip('.')
    image_format = {'jpg': 'JPEG', 'jpeg': 'JPEG', 'tif': 'TIFF'}.get(ext, ext.upper() or 'PNG')
    atomic_write(path, lambda f: Image.fromarray(array).save(f, format=image_format))
