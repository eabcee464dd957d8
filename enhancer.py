"""One-call enhancement from Python: load_enhancer(checkpoint folder) returns a function from a low-light image
to its enhanced version (the inference path Pre -> H -> G_A, as test.py runs it)."""
import json
import os

import numpy as np
import torch
from PIL import Image

from models import create_model
from options.test_options import TestOptions
from util.images import to_uint8

ARCHITECTURE_FLAGS = ('ngf', 'netG', 'norm', 'no_dropout', 'input_nc', 'output_nc')


def read_text_options(path):
    """{flag: value as text} from a train_opt.txt (ours, or the official code's)."""
    values = {}
    with open(path) as f:
        for line in f:
            key, sep, value = line.strip().partition(': ')
            if sep:
                values[key] = value.split('\t')[0].strip()
    return values


def saved_architecture(folder):
    """The architecture flags of the run in folder, as command-line arguments: from train_opt.json (ours), else
    train_opt.txt (the official code's); none when neither is there."""
    json_path, text_path = (os.path.join(folder, 'train_opt' + ext) for ext in ('.json', '.txt'))
    if os.path.isfile(json_path):
        with open(json_path) as f:
            values = {k: str(v) for k, v in json.load(f).items()}
    elif os.path.isfile(text_path):
        values = read_text_options(text_path)
    else:
        return []
    argv = []
    for key in ARCHITECTURE_FLAGS:
        if key == 'no_dropout':
            argv += ['--no_dropout'] if values.get(key) == 'True' else []
        elif key in values:
            argv += ['--' + key, values[key]]
    return argv


def as_tensor(image):
    """(batch in [-1, 1], function turning an output batch back into image's kind and range)."""
    if isinstance(image, Image.Image):
        array = np.asarray(image.convert('RGB'))
        return as_tensor(array)[0], lambda out: Image.fromarray(to_uint8(out)[0])
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise TypeError('numpy images must be uint8 (H, W) or (H, W, 3), not %s' % image.dtype)
        array = np.repeat(image[..., None], 3, -1) if image.ndim == 2 else image[..., :3]
        batch = torch.from_numpy(np.array(array)).permute(2, 0, 1)[None].float() / 127.5 - 1
        return batch, lambda out: to_uint8(out)[0]
    if isinstance(image, torch.Tensor):
        single = image.dim() == 3
        batch = image[None] if single else image
        return batch.float() * 2 - 1, lambda out: ((out.clamp(-1, 1) + 1) / 2).to(image)[0 if single else slice(None)]
    raise TypeError('expected a PIL image, a uint8 numpy array or a tensor in [0, 1], not %s' % type(image).__name__)


class Enhancer:
    """Pre, H and G_A loaded from one checkpoint folder; call it on a PIL image, a uint8 array (H, W, 3) or a
    tensor in [0, 1] ((3, H, W) or (N, 3, H, W)) to get the enhanced image of the same kind and size."""

    def __init__(self, folder, epoch='latest', device='cpu', options=()):
        folder = os.path.abspath(folder)
        argv = ['--dataroot', folder, '--name', os.path.basename(folder), '--checkpoints_dir',
                os.path.dirname(folder), '--epoch', str(epoch), *saved_architecture(folder), *options]
        opt = TestOptions().gather_options(argv)
        self.device = torch.device(device)
        opt.isTrain, opt.device = False, str(self.device)
        opt.gpu_ids = [self.device.index or 0] if self.device.type == 'cuda' else []
        self.model = create_model(opt)
        self.model.load_networks(epoch)

    def __call__(self, image):
        batch, back = as_tensor(image)
        with torch.inference_mode(), self.model.autocast():
            return back(self.model.enhance(batch.to(self.device))[3])


def load_enhancer(folder, epoch='latest', device='cpu', options=()):
    """An Enhancer for the checkpoints in folder (e.g. "saves/LSRW"); options are extra test.py flags."""
    return Enhancer(folder, epoch, device, options)
