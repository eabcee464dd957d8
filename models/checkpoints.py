"""Checkpoint files: their names ({label}_net_{name}.pth, {label}_train_state.pth), writing a label's files as
one set, and reading network weights, training states and CLIP weights with one clear error for each way a file
can be wrong. Every file is read with weights_only=True: a checkpoint can hold tensors and plain values, never code.

A set is written in two phases: every file goes to a temporary file beside its final name; then the manifest
{label}_checkpoint.json, listing each file with its temporary name and hash, replaces the previous one (the commit);
then the temporary files are renamed into place. A kill before the commit leaves the previous set whole; a kill
after it is completed by recover() at the next start, which also removes temporary files left by a kill."""
import contextlib
import errno
import glob
import hashlib
import json
import os
import re
import shutil

import torch
import torch.nn as nn

from util.util import UserError, atomic_write, read_json, write_temporary

TEMPORARY = re.compile(r'^\..+\.tmp$')
# the files of a checkpoint set: <label>_net_<network>.pth of the eight networks, <label>_train_state.pth and the
# manifest <label>_checkpoint.json
NETWORK_FILE = re.compile(r'(.+)_net_(?:G_A|Pre|H|G_B|D_A|D_B|D_A_edge|D_B_edge)\.pth')
SET_FILE = re.compile(r'%s|.+_(?:train_state\.pth|checkpoint\.json)' % NETWORK_FILE.pattern)

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


def manifest_path(folder, label):
    return os.path.join(folder, '%s_checkpoint.json' % label)


def available_labels(folder, names):
    """The labels in folder for which every one of the networks `names` has a file, numbers first."""
    labels = None
    for name in names:
        found = {re.sub(r'_net_%s\.pth$' % name, '', os.path.basename(p))
                 for p in glob.glob(os.path.join(glob.escape(folder), '*_net_%s.pth' % name))}
        labels = found if labels is None else labels & found
    return sorted(labels or [], key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s))


def remove_sets(folder):
    """Remove every checkpoint set in folder (an earlier run's, which --overwrite starts afresh over); returns their
    labels."""
    labels = available_labels(folder, ['G_A'])
    for name in os.listdir(folder):
        if SET_FILE.fullmatch(name):
            os.remove(os.path.join(folder, name))
    return labels


def network_state(net):
    """A network's state dict as the official code writes it: contiguous CPU tensors, no 'module.' prefix."""
    return {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}


def digest(path):
    h = hashlib.blake2b(digest_size=16)
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 22), b''):
            h.update(chunk)
    return h.hexdigest()


def save_set(folder, label, objects):
    """Write {path: object} (paths in folder) as the checkpoint set of label; see the module's docstring. A full
    disk is one UserError, and the previous set stays whole."""
    entries = {}
    try:
        for path, obj in objects.items():
            temp = write_temporary(path, lambda f: torch.save(obj, f))
            entries[os.path.basename(path)] = {'temporary': os.path.basename(temp), 'digest': digest(temp)}
        manifest = json.dumps({'label': str(label), 'files': entries}, indent=1).encode()
        atomic_write(manifest_path(folder, label), lambda f: f.write(manifest))
    except BaseException as exc:
        for entry in entries.values():
            with contextlib.suppress(OSError):
                os.remove(os.path.join(folder, entry['temporary']))
        error = os_error(exc)
        if error is not None and error.errno == errno.ENOSPC:
            raise UserError('%s: disk full while saving checkpoint %s (it needs about %d MB, %d MB are free); the '
                            'previous %s checkpoint is kept; free some space and resume with --continue_train'
                            % (folder, label, tensor_bytes(list(objects.values())) >> 20,
                               shutil.disk_usage(folder).free >> 20, label)) from None
        if error is not None:
            raise UserError('%s: checkpoint %s could not be saved (%s); the previous %s checkpoint is kept; make the '
                            'folder writable and resume with --continue_train'
                            % (folder, label, error.strerror or error, label)) from None
        raise
    for name, entry in entries.items():
        os.replace(os.path.join(folder, entry['temporary']), os.path.join(folder, name))


def os_error(error):
    """The OSError that error is or was raised from (torch.save wraps the OSError of a failed write), or None."""
    while error is not None and not isinstance(error, OSError):
        error = error.__cause__ or error.__context__
    return error


def tensor_bytes(obj):
    """The bytes of the tensors in a (nested) checkpoint object."""
    if isinstance(obj, torch.Tensor):
        return obj.nbytes
    if isinstance(obj, dict):
        return sum(tensor_bytes(value) for value in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(value) for value in obj)
    return 0


def without_module_prefix(state):
    """A state dict saved from a DataParallel / DistributedDataParallel wrapper, with its keys made plain."""
    return {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}


def read(path, what):
    """torch.load(path, weights_only=True) on the CPU; a UserError naming the file when it cannot be read."""
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:
        raise UserError('%s: cannot be read (%s); %s' % (path, exc.__class__.__name__, what)) from None


def load_networks(folder, label, nets, where='--name, --checkpoints_dir, --epoch'):
    """Load checkpoint set label of folder into nets ({name: network}), after checking that its files were saved
    together; a missing file is one UserError naming where (the flags that choose the set) and the labels there."""
    available = available_labels(folder, nets)
    paths = {name: network_path(folder, label, name) for name in nets}
    check_set(folder, label, paths.values())
    for name, path in paths.items():
        load_network(nets[name], path, name, available, where)


def load_network(net, path, name, available=(), where='--name, --checkpoints_dir, --epoch'):
    """Load an official-format state dict into net, accepting a 'module.' prefix and the InstanceNorm buffers of
    old checkpoints; any mismatch is one UserError naming the file, the key and the option that likely differs."""
    hint = OPTION_HINTS.get(name, '--netD, --n_layers_D, --ndf or --norm')
    if not os.path.isfile(path):
        have = ('; checkpoints here: %s' % ', '.join(available)) if available else ''
        raise UserError('%s: checkpoint not found (check %s%s)' % (path, where, have))
    state = read(path, 'the file is truncated or not a PyTorch checkpoint')
    if not isinstance(state, dict):
        raise UserError('%s: holds a %s, not a state dict' % (path, type(state).__name__))
    load_state(net, without_module_prefix(state), path, hint)


def load_state(net, state, path, hint, prefix=''):
    """Load state into net; a missing or unexpected key or a shape that differs is one UserError naming path, the
    key (as the file names it, after prefix) and hint (the options that likely differ)."""
    own = net.state_dict()
    for key in [k for k in state if k not in own and k.rsplit('.', 1)[-1] in NORM_BUFFERS]:
        if isinstance(net.get_submodule(key.rsplit('.', 1)[0]) if '.' in key else net, nn.InstanceNorm2d):
            del state[key]
    unexpected = [k for k in state if k not in own]
    missing = [k for k in own if k not in state]
    if unexpected or missing:
        key, what = (unexpected[0], 'unexpected key') if unexpected else (missing[0], 'missing key')
        raise UserError('%s: %s %s (%d unexpected, %d missing); the network was built with different options, '
                        'check %s' % (path, what, prefix + key, len(unexpected), len(missing), hint))
    for key, value in state.items():
        if value.shape != own[key].shape:
            raise UserError('%s: %s has shape %s in the file but %s in the network; check %s'
                            % (path, prefix + key, tuple(value.shape), tuple(own[key].shape), hint))
    net.load_state_dict(state)


def read_training_state(path):
    """The training state saved at path (see training/state.py), None if there is none."""
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


def manifest_entries(path):
    """{file name: {'digest', 'temporary'}} of a checkpoint set's manifest (<label>_checkpoint.json)."""
    hint = 'the file is damaged: move it away (the set it lists is then taken as it is)'
    entries = read_json(path, hint)
    if not isinstance(entries, dict) or not isinstance(entries.get('files'), dict):
        raise UserError('%s: not a checkpoint manifest (no "files" object); %s' % (path, hint))
    return entries['files']


def recover(folder):
    """Complete checkpoint sets whose save was killed after its commit, and remove temporary files left by a kill
    (of a set not yet committed, or of a single atomic write)."""
    if not os.path.isdir(folder):
        return
    for path in glob.glob(os.path.join(glob.escape(folder), '*_checkpoint.json')):
        for name, entry in manifest_entries(path).items():
            temp = os.path.join(folder, entry['temporary'])
            if os.path.isfile(temp) and digest(temp) == entry['digest']:
                os.replace(temp, os.path.join(folder, name))
    for name in os.listdir(folder):
        if TEMPORARY.match(name):
            os.remove(os.path.join(folder, name))


def check_set(folder, label, paths):
    """A UserError if any of paths is not the file that label's manifest lists (a set mixed from two saves); a
    label without a manifest (written by the official code, or file by file) is taken as it is."""
    manifest = manifest_path(folder, label)
    if not os.path.isfile(manifest):
        return
    entries = manifest_entries(manifest)
    for path in paths:
        entry = entries.get(os.path.basename(path))
        if entry and os.path.isfile(path) and digest(path) != entry['digest']:
            raise UserError('%s: not the file saved with the rest of checkpoint %s (%s); the set is mixed from two '
                            'saves: if a training run was killed while saving, start it again with --continue_train '
                            'to complete the set; otherwise restore the file or use another --epoch'
                            % (path, label, os.path.basename(manifest)))
