"""Small helpers: the user-facing error, tensor <-> image conversion, atomic file writes."""
import os
import tempfile

import numpy as np
import torch
from PIL import Image


class UserError(Exception):
    """A problem with the user's input (file, folder or flag), reported as one line without a traceback."""


def out_of_memory(path, height, width):
    """The line that names an image too large for the GPU and what to do."""
    return ('skipped %s: out of GPU memory at %dx%d; try --tile 512, --amp bf16, a smaller copy (--preprocess '
            'scale_width --load_size N) or the CPU' % (path, width, height))


def tensor2im(image):
    """First image of a batch in [-1, 1] -> HxWx3 uint8 array (one channel is repeated to three)."""
    if not isinstance(image, torch.Tensor):
        return image
    array = image[0].detach().float().cpu().clamp(-1, 1).numpy()
    if array.shape[0] == 1:
        array = np.tile(array, (3, 1, 1))
    return np.round((np.transpose(array, (1, 2, 0)) + 1) / 2.0 * 255.0).astype(np.uint8)


def save_image(image_numpy, image_path):
    """Write an HxWx3 uint8 array as an image file (atomically)."""
    atomic_write(image_path, lambda f: Image.fromarray(image_numpy).save(f, format=_format(image_path)))


def _format(path):
    ext = os.path.splitext(path)[1].lower().lstrip('.')
    return {'jpg': 'JPEG', 'jpeg': 'JPEG', 'tif': 'TIFF'}.get(ext, ext.upper() or 'PNG')


def mkdirs(*paths):
    for path in paths:
        os.makedirs(path, exist_ok=True)


def atomic_write(path, write):
    """Call write(file) on a temporary file beside path, fsync it, then rename it over path, so a kill at any
    moment leaves either the old file or the complete new one."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_save(obj, path):
    """torch.save through atomic_write."""
    atomic_write(path, lambda f: torch.save(obj, f))
