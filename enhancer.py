"""One-call enhancement from Python: load_enhancer(checkpoint folder, Hub-layout folder or ONNX file) returns an
enhancer, a function from a low-light image to its enhanced version (the inference path Pre -> H -> G_A, as test.py
runs it)."""
import os
import re

from models import create_model, deployment, inference
from options.test_options import TestOptions
from util.runtime import named_device
from util.util import UserError, read_json

CHECKPOINT_FILE = re.compile(r'(.+)_net_(?:G_A|Pre|H|G_B|D_A|D_B|D_A_edge|D_B_edge)\.pth')
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


def architecture_argv(values):
    """The architecture flags among values ({flag: value}) as command-line arguments."""
    argv = []
    for key in ARCHITECTURE_FLAGS:
        if key == 'no_dropout':
            argv += ['--no_dropout'] if str(values.get(key)) == 'True' else []
        elif key in values:
            argv += ['--' + key, str(values[key])]
    return argv


def saved_architecture(folder):
    """The architecture flags of the run in folder, as command-line arguments: from train_opt.json (ours), else
    train_opt.txt (the official code's); none when neither is there."""
    json_path, text_path = (os.path.join(folder, 'train_opt' + ext) for ext in ('.json', '.txt'))
    if os.path.isfile(json_path):
        values = read_json(json_path, 'fix it from train_opt.txt beside it, or delete it to use train_opt.txt')
        if not isinstance(values, dict):
            raise UserError('%s: not the options of a run (a JSON object of flags); fix or delete it' % json_path)
        return architecture_argv(values)
    if os.path.isfile(text_path):
        return architecture_argv(read_text_options(text_path))
    return []


def load_enhancer(path, epoch='latest', device='cpu', options=(), hint=inference.HINT):
    """An enhancer (models/inference.py) for path: a checkpoint folder (e.g. "saves/LSRW"; --epoch picks the
    checkpoint, the architecture is the one recorded there; a file of the set, e.g. 200_net_G_A.pth, stands for its
    folder at its epoch), a Hub-layout folder (config.json, model.safetensors:
    scripts/export.py) or an ONNX file (run by onnxruntime). options are extra test.py flags (e.g. ['--tile',
    '512']; not for ONNX), hint what the out-of-GPU-memory line suggests."""
    path, device = os.path.abspath(path), named_device(str(device))
    checkpoint = CHECKPOINT_FILE.fullmatch(os.path.basename(path))
    if checkpoint and os.path.isfile(path):  # one file of a checkpoint set: its folder, at its epoch
        path, epoch = os.path.dirname(path), checkpoint.group(1)
    elif os.path.isfile(path):
        if options:
            raise UserError('%s: test.py flags (%s) do not apply to an ONNX file' % (path, ' '.join(options)))
        return inference.OnnxEnhancer(path, device)
    hub = deployment.load_hub_folder(path) if os.path.isfile(os.path.join(path, 'config.json')) else None
    architecture = architecture_argv(hub.architecture) if hub else saved_architecture(path)
    argv = ['--dataroot', path, '--name', os.path.basename(path), '--checkpoints_dir', os.path.dirname(path),
            '--epoch', str(epoch), *architecture, *options]
    opt = TestOptions.passed_on().gather_options(argv)
    opt.isTrain, opt.device = False, str(device)
    opt.gpu_ids = [device.index or 0] if device.type == 'cuda' else []
    model = create_model(opt)
    if hub:
        for name, net in hub.networks().items():
            getattr(model, 'net' + name).load_state_dict(net.state_dict())
    else:
        model.load_networks(epoch)
    return inference.Enhancer(model, opt.tile, hint)
