"""One-call enhancement from Python: load_enhancer(checkpoint folder, Hub-layout folder or ONNX file) returns an
enhancer, a function from a low-light image to its enhanced version (the inference path Pre -> H -> G_A, as test.py
runs it)."""
import os
import re

from models import create_model, deployment, inference
from options.recorded import architecture_argv, saved_architecture
from options.test_options import TestOptions
from util.runtime import named_device
from util.util import UserError

CHECKPOINT_FILE = re.compile(r'(.+)_net_(?:G_A|Pre|H|G_B|D_A|D_B|D_A_edge|D_B_edge)\.pth')


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
