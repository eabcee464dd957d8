"""The training run's surroundings: its folder (held by one run at a time), the stop request of Ctrl-C / SIGTERM,
and the checks and warnings given before the first step."""
import os
import shutil
import signal
import sys

import torch

from models import checkpoints, networks
from util import distributed
from util.locks import FolderLock
from util.util import UserError, writable_folder


def check_disk_space(model):
    """Fail now, not after hours, when the checkpoint folder cannot hold two checkpoints with optimizer state."""
    n_bytes = sum(p.numel() * p.element_size() for net in model.networks() for p in net.parameters())
    needed = 2 * 3 * n_bytes
    free = shutil.disk_usage(model.save_dir).free
    if free < needed:
        raise UserError('%s: %d MB free, checkpoints need about %d MB; free some space or choose another '
                        '--checkpoints_dir' % (model.save_dir, free >> 20, needed >> 20))


class StopRequest:
    """The first Ctrl-C (or SIGTERM, as schedulers and `timeout` send) asks the loop to stop after the current
    iteration; a second one interrupts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False

    def __enter__(self):
        self.previous = {s: signal.signal(s, self.handle) for s in self.SIGNALS}
        return self

    def handle(self, signum, frame):
        self.requested = True
        self.__exit__()
        print('\nstopping after this iteration (Ctrl-C again to abort without saving)', file=sys.stderr)

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)


class RunFolder:
    """The run's folder (<checkpoints_dir>/<name>), held by one training run at a time through a lock file naming
    its process; a new run is refused over an earlier run's checkpoints unless it continues (--continue_train) or
    replaces them (--overwrite). Checkpoint sets interrupted by a kill are completed or cleaned up on entry."""

    def __init__(self, opt):
        self.opt = opt
        self.path = writable_folder(os.path.join(opt.checkpoints_dir, opt.name),
                                    '--checkpoints_dir %s' % opt.checkpoints_dir)
        self.lock = FolderLock(self.path, '.training.lock', 'training run', 'another --name')

    def __enter__(self):
        """Rank 0 takes the folder; under torchrun the other ranks wait until it holds the folder and has recovered
        its checkpoint sets, and leave (exit status 1, rank 0 says why) when it could not."""
        distributed.main_only(self.acquire)
        return self

    def acquire(self):
        self.lock.acquire()
        try:
            checkpoints.recover(self.path)
            labels = checkpoints.available_labels(self.path, ['G_A'])
            if labels and not (self.opt.continue_train or self.opt.overwrite):
                raise UserError('%s holds the checkpoints of an earlier run (%s); add --continue_train to resume '
                                'it, choose another --name, or add --overwrite to start afresh over it'
                                % (self.path, ', '.join(labels)))
        except BaseException:
            self.lock.release()
            raise

    def __exit__(self, *exc):
        if distributed.is_main():
            self.lock.release()


def warn_about_zero_learning_rate(opt, start_epoch):
    """Warn when an epoch of this run would train at learning rate 0 (with the official order, in which the
    schedule steps at the start of each epoch, the last epoch always does). A plateau schedule cannot be foreseen."""
    if opt.lr_policy == 'plateau':
        return
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=opt.lr)
    scheduler = networks.get_scheduler(optimizer, opt)
    optimizer.step()  # a no-op (no gradient) that keeps PyTorch from warning about the order of the steps below
    rates = {}
    for epoch in range(opt.epoch_count, opt.n_epochs + opt.n_epochs_decay + 1):
        if not opt.lr_step_after_epoch:
            scheduler.step()
        rates[epoch] = scheduler.get_last_lr()[0]
        if opt.lr_step_after_epoch:
            scheduler.step()
    idle = [epoch for epoch, rate in rates.items() if epoch >= start_epoch and rate == 0]
    if idle:
        print('warning: epoch(s) %s of this run train at learning rate 0 (the official schedule steps at the start '
              'of each epoch); --lr_step_after_epoch steps it at the end, as CycleGAN does'
              % ', '.join(map(str, idle)), file=sys.stderr)
