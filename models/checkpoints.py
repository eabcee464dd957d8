"""Checkpoint files: their names ({label}_net_{name}.pth, {label}_train_state.pth), writing them atomically, and
reading network weights, training states and CLIP weights with one clear error for each way a file can be wrong.
Every file is read with weights_only=True: a checkpoint can hold tensors and plain values, never code."""
import glob
import os
import re

import torch
import torch.nn as nn

from util.util import UserError, atomic_write

NORM_BUFFERS = ('running_mean', 'running_var', 'num_batches_tracked')
OPTION_HINTS = {'G_A': '--netG, --ngf or --norm', 'G_B': '--netG, --ngf or --norm', 'Pre': '--ngf or --norm',
                'H': '--ngf or --norm'}


def label(opt):
    """The checkpoint label that --epoch / --load_iter name: 'iter_<N>' or the epoch ('latest', '5', ...)."""
    return 'iter_%d' % opt.load_iter if opt.load_iter > 0 else str(opt.epoch)


def network_path(folder, label, name):
    return os.path.join(folder, '%s_net_%s.pth' % (label, name))


def state_path(folder, label):
    return os.path.join(folder, '%s_train_state.pth' % label)


def available_labels(folder, names):
    """The labels in folder for which every one of the networks `names` has a file, numbers first."""
    labels = None
    for name in names:
        found = {re.sub(r'_net_%s\.pth$' % name, '', os.path.basename(p))
                 for p in glob.glob(os.path.join(glob.escape(folder), '*_net_%s.pth' % name))}
        labels = found if labels is None else labels & found
    return sorted(labels or [], key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s))


def save(obj, path):
    """torch.save, atomically (util.util.atomic_write)."""
    atomic_write(path, lambda f: torch.save(obj, f))


def save_network(net, path):
    """A network's state dict as the official code writes it: contiguous CPU tensors, no 'module.' prefix."""
    save({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, path)


def without_module_prefix(state):
    """A state dict saved from a DataParallel / DistributedDataParallel wrapper, with its keys made plain."""
    return {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}


def read(path, what):
    """torch.load(path, weights_only=True) on the CPU; a UserError naming the file when it cannot be read."""
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:
        raise UserError('%s: cannot be read (%s); %s' % (path, exc.__class__.__name__, what)) from None


def load_network(net, path, name, available=()):
    """Load an official-format state dict into net, accepting a 'module.' prefix and the InstanceNorm buffers of
    old checkpoints; any mismatch is one UserError naming the file, the key and the option that likely differs."""
    hint = OPTION_HINTS.get(name, '--netD, --n_layers_D, --ndf or --norm')
    if not os.path.isfile(path):
        have = ('; checkpoints here: %s' % ', '.join(available)) if available else ''
        raise UserError('%s: checkpoint not found (check --name, --checkpoints_dir, --epoch%s)' % (path, have))
    state = read(path, 'the file is truncated or not a PyTorch checkpoint')
    if not isinstance(state, dict):
        raise UserError('%s: holds a %s, not a state dict' % (path, type(state).__name__))
    state = without_module_prefix(state)
    own = net.state_dict()
    for key in [k for k in state if k not in own and k.rsplit('.', 1)[-1] in NORM_BUFFERS]:
        if isinstance(net.get_submodule(key.rsplit('.', 1)[0]) if '.' in key else net, nn.InstanceNorm2d):
            del state[key]
    unexpected = [k for k in state if k not in own]
    missing = [k for k in own if k not in state]
    if unexpected or missing:
        key, what = (unexpected[0], 'unexpected key') if unexpected else (missing[0], 'missing key')
        raise UserError('%s: %s %s (%d unexpected, %d missing); the network was built with different options, '
                        'check %s' % (path, what, key, len(unexpected), len(missing), hint))
    for key, value in state.items():
        if value.shape != own[key].shape:
            raise UserError('%s: %s has shape %s in the file but %s in the network; check %s'
                            % (path, key, tuple(value.shape), tuple(own[key].shape), hint))
    net.load_state_dict(state)


def read_training_state(path):
    """The training state saved at path (see BaseModel.training_state), None if there is none."""
    if not os.path.isfile(path):
        return None
    return read(path, 'delete it to resume from the weights alone')


def read_clip_weights(path):
    """CLIP weights from OpenAI's TorchScript archive (RN50.pt) or from a plain or wrapped state-dict file."""
    try:
        return torch.jit.load(path, map_location='cpu').state_dict()
    except RuntimeError:
        pass
    state = read(path, "place OpenAI's RN50.pt there or pass --clip_pretrained none")
    return without_module_prefix(state.get('state_dict', state))
