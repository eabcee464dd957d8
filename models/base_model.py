"""BaseModel: the template every model follows (CycleGAN's interface), and what they share: device, schedulers,
visuals, losses and checkpoints."""
import os
import re
import warnings
from abc import ABC, abstractmethod
from collections import OrderedDict

import torch

from util import distributed, runtime
from . import checkpoints, execution, networks


class BaseModel(ABC):
    """Subclasses set loss_names (progress_names: the few the progress bar shows), model_names, visual_names,
    optimizers (optimizer_names: theirs, for the logs), and implement set_input, forward and optimize_parameters."""

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
        self.progress_names = []
        self.model_names = []
        self.visual_names = []
        self.optimizers = []
        self.optimizer_names = []
        self.schedulers = []

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
        """Create schedulers; load weights for testing or for --continue_train; print the networks. (Under torchrun
        every process starts from rank 0's weights: see execution.data_parallel.)"""
        if self.isTrain:
            self.schedulers = [networks.get_scheduler(optimizer, opt) for optimizer in self.optimizers]
        if not self.isTrain or opt.continue_train:
            self.load_networks(checkpoints.label(opt))
        if distributed.is_main():
            self.print_networks(opt.verbose)

    def networks(self):
        return [getattr(self, 'net' + name) for name in self.model_names]

    def eval(self):
        for net in self.networks():
            net.eval()

    def autocast(self):
        return execution.autocast(self.opt, self.device)

    def update_learning_rate(self, metric=None, higher_is_better=False):
        """Step the schedulers: without a metric (train.py: at the start of each epoch, as the official code does)
        every schedule but --lr_policy plateau; with one (after a validation) plateau's, which then follows the
        metric's direction (a schedule made for the other direction starts afresh)."""
        if (self.opt.lr_policy == 'plateau') != (metric is not None):
            return
        mode = 'max' if higher_is_better else 'min'
        if metric is not None and any(s.mode != mode for s in self.schedulers):
            self.schedulers = [networks.get_scheduler(o, self.opt, plateau_mode=mode) for o in self.optimizers]
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

    def get_current_losses(self, names=None):
        """{name: value} of the losses named (default: loss_names) at the last step."""
        return OrderedDict((name, float(torch.as_tensor(getattr(self, 'loss_' + name)).detach()))
                           for name in (self.loss_names if names is None else names))

    def learning_rates(self):
        """{optimizer name: its current learning rate}, for the logs."""
        return {name: optimizer.param_groups[0]['lr'] for name, optimizer in zip(self.optimizer_names, self.optimizers)}

    def save_networks(self, label, extra=None):
        """Write {label}_net_{name}.pth for every network, and extra {path: object}, as one checkpoint set
        (models/checkpoints.py: a kill at any moment leaves the previous set or the new one, never a mix)."""
        os.makedirs(self.save_dir, exist_ok=True)
        objects = {checkpoints.network_path(self.save_dir, label, name):
                   checkpoints.network_state(execution.unwrap(getattr(self, 'net' + name)))
                   for name in self.model_names}
        checkpoints.save_set(self.save_dir, label, {**objects, **(extra or {})})

    def load_networks(self, label):
        checkpoints.load_networks(self.save_dir, label, {name: execution.unwrap(getattr(self, 'net' + name))
                                                         for name in self.model_names})

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
