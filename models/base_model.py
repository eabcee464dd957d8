"""BaseModel: the template every model follows (CycleGAN's interface), and what they share: device, schedulers,
visuals, losses, checkpoints and the training state."""
import os
import random
import re
import warnings
from abc import ABC, abstractmethod
from collections import OrderedDict

import numpy as np
import torch

from util import distributed, runtime
from util.util import UserError
from . import checkpoints, execution, networks


class BaseModel(ABC):
    """Subclasses set loss_names, model_names, visual_names and optimizers, and implement set_input, forward and
    optimize_parameters."""

    def __init__(self, opt):
        self.opt = opt
        self.isTrain = opt.isTrain
        self.device = torch.device(runtime.setup(opt).device)
        self.save_dir = os.path.join(opt.checkpoints_dir, opt.name)
        if opt.compile:
            execution.check_compile(opt, self.device)
        if self.device.type == 'cuda' and opt.preprocess != 'scale_width':
            torch.backends.cudnn.benchmark = True
        self.loss_names = []
        self.model_names = []
        self.visual_names = []
        self.optimizers = []
        self.schedulers = []
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

    def setup(self, opt):
        """Create schedulers; load weights for testing or for --continue_train; under torchrun, give every process
        rank 0's weights; print the networks."""
        if self.isTrain:
            self.schedulers = [networks.get_scheduler(optimizer, opt) for optimizer in self.optimizers]
        if not self.isTrain or opt.continue_train:
            self.load_networks(checkpoints.label(opt))
        distributed.broadcast_parameters(self.networks())
        if distributed.is_main():
            self.print_networks(opt.verbose)

    def networks(self):
        return [getattr(self, 'net' + name) for name in self.model_names]

    def eval(self):
        for net in self.networks():
            net.eval()

    def autocast(self):
        return execution.autocast(self.opt, self.device)

    def update_learning_rate(self, metric=None):
        """Step the schedulers: without a metric (train.py: at the start of each epoch, as the official code does)
        every schedule but --lr_policy plateau; with one (after a validation, lower is better) plateau's."""
        if (self.opt.lr_policy == 'plateau') != (metric is not None):
            return
        old_lr = self.optimizers[0].param_groups[0]['lr']
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', message=re.escape('Detected call of `lr_scheduler.step()` before'))
            for scheduler in self.schedulers:
                scheduler.step(*([] if metric is None else [metric]))
        lr = self.optimizers[0].param_groups[0]['lr']
        if lr != old_lr:
            print('learning rate %.7f -> %.7f' % (old_lr, lr))

    def get_current_visuals(self):
        return OrderedDict((name, getattr(self, name)) for name in self.visual_names)

    def get_current_losses(self):
        return OrderedDict((name, float(torch.as_tensor(getattr(self, 'loss_' + name)).detach()))
                           for name in self.loss_names)

    def save_networks(self, label, extra=None):
        """Write {label}_net_{name}.pth for every network, and extra {path: object}, as one checkpoint set
        (models/checkpoints.py: a kill at any moment leaves the previous set or the new one, never a mix)."""
        os.makedirs(self.save_dir, exist_ok=True)
        objects = {checkpoints.network_path(self.save_dir, label, name):
                   checkpoints.network_state(execution.unwrap(getattr(self, 'net' + name)))
                   for name in self.model_names}
        checkpoints.save_set(self.save_dir, label, {**objects, **(extra or {})})

    def save_checkpoint(self, label, counters):
        """The networks and the training state (what --continue_train restores) as one set."""
        self.save_networks(label, {checkpoints.state_path(self.save_dir, label): self.training_state(counters)})

    def load_networks(self, label):
        available = checkpoints.available_labels(self.save_dir, self.model_names)
        paths = {name: checkpoints.network_path(self.save_dir, label, name) for name in self.model_names}
        checkpoints.check_set(self.save_dir, label, paths.values())
        for name, path in paths.items():
            checkpoints.load_network(execution.unwrap(getattr(self, 'net' + name)), path, name, available)

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
        pools and random generators, as tensors and plain values (so it loads with weights_only=True)."""
        kind, key, pos, has_gauss, gauss = np.random.get_state()
        return {'counters': dict(counters),
                'optimizers': [o.state_dict() for o in self.optimizers],
                'schedulers': [s.state_dict() for s in self.schedulers],
                'pools': {name: getattr(self, name).state_dict() for name in getattr(self, 'pool_names', [])},
                'scaler': self.scaler.state_dict(),
                'rng': {'python': random.getstate(), 'numpy': (kind, torch.from_numpy(key.astype(np.int64)), pos,
                                                               has_gauss, gauss),
                        'torch': torch.get_rng_state(),
                        'cuda': torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}}

    def load_training_state(self, label):
        """Restore optimizers, schedulers, pools and random generators (the last two in single-process runs only);
        return the saved counters, or None when the run was saved by the official code (weights only)."""
        path = checkpoints.state_path(self.save_dir, label)
        checkpoints.check_set(self.save_dir, label, [path])
        state = checkpoints.read_training_state(path)
        if state is None:
            return None
        try:
            for optimizer, saved in zip(self.optimizers, state['optimizers']):
                optimizer.load_state_dict(saved)
                for param, entry in optimizer.state.items():
                    for key, value in entry.items():
                        if value.dim() and value.shape != param.shape:
                            raise ValueError('%s of shape %s for a parameter of shape %s'
                                             % (key, tuple(value.shape), tuple(param.shape)))
        except (ValueError, KeyError) as exc:
            raise UserError('%s: the optimizer state does not fit these networks (%s); it was saved by a run with '
                            'other options (--ngf, --ndf, --netG, --netD, --norm), or delete it to resume from the '
                            'weights alone' % (path, exc)) from None
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
        kind, key, pos, has_gauss, gauss = rng['numpy']
        np.random.set_state((kind, key.numpy().astype(np.uint32), pos, has_gauss, gauss))
        torch.set_rng_state(rng['torch'].cpu())
        if rng['cuda'] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in rng['cuda']])
        return state['counters']
