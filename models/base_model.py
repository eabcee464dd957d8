"""BaseModel: what every model shares: device, schedulers, visuals and losses, and official-format checkpoints."""
import contextlib
import glob
import os
import random
import re
import warnings
from abc import ABC, abstractmethod
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn

from util import distributed
from util.util import UserError, atomic_save
from . import networks
from .generators import ResnetBlock

NORM_BUFFERS = ('running_mean', 'running_var', 'num_batches_tracked')


def unwrap(net):
    return net.module if isinstance(net, nn.DataParallel) else net


class StepGroup(nn.Module):
    """The networks of one optimizer step; forward(compute) runs compute(), which uses them."""

    def __init__(self, nets):
        super().__init__()
        self.nets = nn.ModuleList(nets)

    def forward(self, compute):
        return compute()


class BaseModel(ABC):
    """Subclasses set loss_names, model_names, visual_names and optimizers, and implement set_input, forward and
    optimize_parameters (the CycleGAN repository's model interface)."""

    def __init__(self, opt):
        self.opt = opt
        self.gpu_ids = opt.gpu_ids
        self.isTrain = opt.isTrain
        self.device = torch.device(opt.device)
        self.save_dir = os.path.join(opt.checkpoints_dir, opt.name)
        if self.device.type == 'cuda' and opt.preprocess != 'scale_width':
            torch.backends.cudnn.benchmark = True
        self.loss_names = []
        self.model_names = []
        self.visual_names = []
        self.optimizers = []
        self.schedulers = []
        self.image_paths = []
        self.metric = 0
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=opt.isTrain and opt.amp == 'fp16')

    @staticmethod
    def modify_commandline_options(parser, is_train):
        return parser

    @abstractmethod
    def set_input(self, input):
        """Unpack a batch from the data loader."""

    @abstractmethod
    def forward(self):
        """Run the networks on the current input."""

    @abstractmethod
    def optimize_parameters(self):
        """One training step: losses, gradients, weight updates."""

    def wrap(self, net):
        """Spread a network over several GPUs (--gpu_ids 0,1,... in one process); under torchrun, or on a single
        device, keep it as it is. With --norm batch under torchrun, BatchNorm becomes SyncBatchNorm. With
        --channels_last its weights take the NHWC layout, which convolutions then pass on to their outputs; with
        --activation_checkpointing its ResNet blocks recompute their activations in the backward pass."""
        if self.opt.channels_last:
            net = net.to(memory_format=torch.channels_last)
        for block in net.modules():
            if isinstance(block, ResnetBlock):
                block.recompute = self.isTrain and self.opt.activation_checkpointing
        if distributed.world_size() > 1:
            return nn.SyncBatchNorm.convert_sync_batchnorm(net) if self.opt.norm == 'batch' else net
        return nn.DataParallel(net, self.gpu_ids) if len(self.gpu_ids) > 1 else net

    def distribute(self, nets):
        """Under torchrun, one DistributedDataParallel wrapper around the networks that one optimizer step
        trains; None otherwise. The step's whole computation runs inside the wrapper's single forward call, so
        networks used several times per step, or frozen in the other step of the GAN, need no special care."""
        if distributed.world_size() == 1:
            return None
        device_ids = [self.device.index] if self.device.type == 'cuda' else None
        return nn.parallel.DistributedDataParallel(StepGroup(nets), device_ids=device_ids)

    def setup(self, opt):
        """Create schedulers; load weights for testing or for --continue_train; print the networks."""
        if self.isTrain:
            self.schedulers = [networks.get_scheduler(optimizer, opt) for optimizer in self.optimizers]
        if not self.isTrain or opt.continue_train:
            self.load_networks(self.load_suffix(opt))
        if distributed.is_main():
            self.print_networks(opt.verbose)

    @staticmethod
    def load_suffix(opt):
        return 'iter_%d' % opt.load_iter if opt.load_iter > 0 else opt.epoch

    def eval(self):
        for name in self.model_names:
            getattr(self, 'net' + name).eval()

    def autocast(self):
        """The autocast context of --amp; none at all for --amp none (older PyTorch rejects autocast on MPS even
        when disabled)."""
        dtype = {'bf16': torch.bfloat16, 'fp16': torch.float16}.get(self.opt.amp)
        return torch.autocast(self.device.type, dtype=dtype) if dtype else contextlib.nullcontext()

    def test(self):
        with torch.no_grad(), self.autocast():
            self.forward()
            self.compute_visuals()

    def compute_visuals(self):
        """Extra images for the display and the HTML pages."""

    def get_image_paths(self):
        return self.image_paths

    def update_learning_rate(self):
        """Step every scheduler; NeRCo's train.py does this at the start of each epoch, as the official code does."""
        old_lr = self.optimizers[0].param_groups[0]['lr']
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', message=re.escape('Detected call of `lr_scheduler.step()` before'))
            for scheduler in self.schedulers:
                if self.opt.lr_policy == 'plateau':
                    scheduler.step(self.metric)
                else:
                    scheduler.step()
        lr = self.optimizers[0].param_groups[0]['lr']
        if lr != old_lr:
            print('learning rate %.7f -> %.7f' % (old_lr, lr))

    def get_current_visuals(self):
        return OrderedDict((name, getattr(self, name)) for name in self.visual_names)

    def get_current_losses(self):
        return OrderedDict((name, float(torch.as_tensor(getattr(self, 'loss_' + name)).detach()))
                           for name in self.loss_names)

    def save_networks(self, epoch):
        """Write {epoch}_net_{name}.pth state dicts (contiguous CPU tensors, no 'module.' prefix), each atomically."""
        os.makedirs(self.save_dir, exist_ok=True)
        for name in self.model_names:
            net = unwrap(getattr(self, 'net' + name))
            state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
            atomic_save(state, os.path.join(self.save_dir, '%s_net_%s.pth' % (epoch, name)))

    def available_epochs(self):
        """Checkpoint labels in save_dir for which every network of this model has a file."""
        labels = None
        for name in self.model_names:
            found = {re.sub(r'_net_%s\.pth$' % name, '', os.path.basename(p))
                     for p in glob.glob(os.path.join(glob.escape(self.save_dir), '*_net_%s.pth' % name))}
            labels = found if labels is None else labels & found
        return sorted(labels or [], key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s))

    def load_networks(self, epoch):
        for name in self.model_names:
            path = os.path.join(self.save_dir, '%s_net_%s.pth' % (epoch, name))
            load_network_file(unwrap(getattr(self, 'net' + name)), path, name, self.available_epochs())

    def print_networks(self, verbose):
        for name in self.model_names:
            net = getattr(self, 'net' + name)
            if verbose:
                print(net)
            print('[Network %s] Total number of parameters : %.3f M'
                  % (name, sum(p.numel() for p in net.parameters()) / 1e6))

    def set_requires_grad(self, nets, requires_grad=False):
        for net in nets if isinstance(nets, list) else [nets]:
            if net is not None:
                net.requires_grad_(requires_grad)

    def training_state(self, counters):
        """Everything besides the weights that an exact resume needs: counters, optimizers, schedulers, image
        pools and random generators."""
        return {'counters': dict(counters),
                'optimizers': [o.state_dict() for o in self.optimizers],
                'schedulers': [s.state_dict() for s in self.schedulers],
                'pools': {name: getattr(self, name).state_dict() for name in getattr(self, 'pool_names', [])},
                'scaler': self.scaler.state_dict(),
                'rng': {'python': random.getstate(), 'numpy': np.random.get_state(),
                        'torch': torch.get_rng_state(),
                        'cuda': torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}}

    def save_training_state(self, label, counters):
        atomic_save(self.training_state(counters), self.training_state_path(label))

    def training_state_path(self, label):
        return os.path.join(self.save_dir, '%s_train_state.pth' % label)

    def load_training_state(self, label):
        """Restore optimizers, schedulers, pools and random generators (the last two in single-process runs only);
        return the saved counters, or None when the run was saved by the official code (weights only)."""
        state = read_training_state(self.training_state_path(label))
        if state is None:
            return None
        for optimizer, saved in zip(self.optimizers, state['optimizers']):
            optimizer.load_state_dict(saved)
        for scheduler, saved in zip(self.schedulers, state['schedulers']):
            scheduler.load_state_dict(saved)
        if state.get('scaler'):
            self.scaler.load_state_dict(state['scaler'])
        if distributed.world_size() > 1:
            return state['counters']  # the saved pools and random state are rank 0's; each rank keeps its own
        for name, saved in state['pools'].items():
            getattr(self, name).load_state_dict(saved, self.device)
        rng = state['rng']
        random.setstate(rng['python'])
        np.random.set_state(rng['numpy'])
        torch.set_rng_state(rng['torch'].cpu())
        if rng['cuda'] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in rng['cuda']])
        return state['counters']


def read_training_state(path):
    """The saved training state at path, None if there is none; a UserError if it cannot be read."""
    if not os.path.isfile(path):
        return None
    try:
        return torch.load(path, map_location='cpu', weights_only=False)
    except Exception as exc:
        raise UserError('%s: cannot be read (%s); delete it to resume from the weights alone'
                        % (path, exc.__class__.__name__)) from None


OPTION_HINTS = {'G_A': '--netG, --ngf or --norm', 'G_B': '--netG, --ngf or --norm', 'Pre': '--ngf or --norm',
                'H': '--ngf or --norm'}


def load_network_file(net, path, name, available=()):
    """Load an official-format state dict into net, accepting a 'module.' prefix and the InstanceNorm buffers of
    old checkpoints; any mismatch is one UserError naming the file, the key and the option that likely differs."""
    hint = OPTION_HINTS.get(name, '--netD, --n_layers_D, --ndf or --norm')
    if not os.path.isfile(path):
        have = ('; checkpoints here: %s' % ', '.join(available)) if available else ''
        raise UserError('%s: checkpoint not found (check --name, --checkpoints_dir, --epoch%s)' % (path, have))
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:
        raise UserError('%s: cannot be read (%s); the file is truncated or not a PyTorch checkpoint'
                        % (path, exc.__class__.__name__)) from None
    if not isinstance(state, dict):
        raise UserError('%s: holds a %s, not a state dict' % (path, type(state).__name__))
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
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
