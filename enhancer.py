"""One-call enhancement from Python: load_enhancer(checkpoint folder) returns an Enhancer, a function from a
low-light image to its enhanced version (the inference path Pre -> H -> G_A, as test.py runs it)."""
import json
import os

import torch

from models import create_model, inference
from options.test_options import TestOptions

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


def load_enhancer(folder, epoch='latest', device='cpu', options=(), hint=inference.HINT):
    """An Enhancer (models/inference.py) for the checkpoints in folder (e.g. "saves/LSRW"), with the architecture
    recorded there; options are extra test.py flags (e.g. ['--tile', '512']), hint what its out-of-GPU-memory line
    suggests."""
    folder = os.path.abspath(folder)
    argv = ['--dataroot', folder, '--name', os.path.basename(folder), '--checkpoints_dir', os.path.dirname(folder),
            '--epoch', str(epoch), *saved_architecture(folder), *options]
    opt = TestOptions().gather_options(argv)
    device = torch.device(device)
    opt.isTrain, opt.device = False, str(device)
    opt.gpu_ids = [device.index or 0] if device.type == 'cuda' else []
    model = create_model(opt)
    model.load_networks(epoch)
    return inference.Enhancer(model, opt.tile, hint)
