"""Finding image files in a folder tree and reading them as RGB."""
import os

import numpy as np
from PIL import Image, ImageOps

from util.util import UserError

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.tif', '.tiff', '.webp')


def is_image_file(filename):
    return filename.lower().endswith(IMG_EXTENSIONS) and not filename.startswith('.')


def make_dataset(folder, max_dataset_size=float('inf'), what='images'):
    """Sorted image paths under folder (subfolders included); other files are ignored. A missing folder or one
    without images is a UserError saying what it should hold."""
    if not os.path.isdir(folder):
        raise UserError('%s: folder not found; it should hold %s' % (folder, what))
    images = sorted(os.path.join(root, f) for root, _, files in os.walk(folder) for f in files if is_image_file(f))
    if not images:
        raise UserError('%s: no images found (%s); it should hold %s' % (folder, ', '.join(IMG_EXTENSIONS), what))
    return images[:int(min(max_dataset_size, len(images)))]


def load_rgb(path):
    """An image file as an 8-bit RGB PIL image: EXIF orientation applied; grayscale, palette, RGBA, CMYK and
    16-bit images converted (alpha is dropped, 16-bit values are scaled to 8 bits)."""
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img)
        if img.mode in ('I', 'I;16', 'I;16L', 'I;16B', 'I;16N', 'F'):
            array = np.asarray(img, dtype=np.float64)
            scale = 65535.0 if array.max() > 255 or img.mode.startswith('I;16') else 255.0
            img = Image.fromarray(np.clip(np.round(array / scale * 255.0), 0, 255).astype(np.uint8))
        return img.convert('RGB')
