"""Train NeRCo on unpaired images: python train.py --dataroot ./dataset --name LSRW

<dataroot>/trainA holds low-light images, <dataroot>/trainB normal-light ones. Checkpoints, the loss log and the
intermediate-results page (web/index.html) go to <checkpoints_dir>/<name>/. Ctrl-C saves `latest` and stops;
--continue_train resumes exactly where a run stopped.
"""
import os
import random
import shutil
import signal
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

from data import create_dataset
from models import create_model
from models.base_model import read_training_state
from options.train_options import TrainOptions
from util import distributed
from util.util import UserError
from util.visualizer import Visualizer


def crossed(total, step, freq):
    """Whether the iteration counter passed a multiple of freq in its last step of `step` images."""
    return freq > 0 and total // freq > (total - step) // freq


def choose_seed(opt):
    """--seed, else the seed of the run being continued, else a fresh one; seeds python, numpy and torch."""
    if opt.seed is None and opt.continue_train:
        label = 'iter_%d' % opt.load_iter if opt.load_iter > 0 else opt.epoch
        state = read_training_state(os.path.join(opt.checkpoints_dir, opt.name, '%s_train_state.pth' % label))
        opt.seed = state['counters']['seed'] if state else None
    if opt.seed is None:
        opt.seed = distributed.broadcast_object(random.SystemRandom().randrange(2 ** 31))
    process_seed = opt.seed + distributed.rank()  # image pools and edge projections differ between processes
    random.seed(process_seed)
    np.random.seed(process_seed % 2 ** 32)
    torch.manual_seed(process_seed)


def check_disk_space(model):
    """Fail now, not after hours, when the checkpoint folder cannot hold two checkpoints with optimizer state."""
    n_bytes = sum(p.numel() * p.element_size() for name in model.model_names
                  for p in getattr(model, 'net' + name).parameters())
    needed = 2 * 3 * n_bytes
    free = shutil.disk_usage(model.save_dir).free
    if free < needed:
        raise UserError('%s: %d MB free, checkpoints need about %d MB; free some space or choose another '
                        '--checkpoints_dir' % (model.save_dir, free >> 20, needed >> 20))


class StopRequest:
    """The first Ctrl-C asks the loop to stop after the current iteration; a second one interrupts at once."""

    def __init__(self):
        self.requested = False

    def __enter__(self):
        self.previous = signal.signal(signal.SIGINT, self.handle)
        return self

    def handle(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, self.previous)
        print('\nstopping after this iteration (Ctrl-C again to abort without saving)', file=sys.stderr)

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self.previous)


def train(opt):
    choose_seed(opt)
    dataset = create_dataset(opt)
    model = create_model(opt)
    model.setup(opt)
    main_process = distributed.is_main()
    if main_process:
        check_disk_space(model)
    visualizer = Visualizer(opt) if main_process else None
    last_epoch = opt.n_epochs + opt.n_epochs_decay
    counters = {'seed': opt.seed, 'epoch': opt.epoch_count, 'epoch_iter': 0, 'total_iters': 0, 'epoch_done': False}
    if opt.continue_train:
        saved = model.load_training_state(model.load_suffix(opt))
        if saved is not None:
            counters.update(saved)
            if counters['epoch_done']:
                counters.update(epoch=counters['epoch'] + 1, epoch_iter=0, epoch_done=False)
            if main_process:
                print('resuming at epoch %d, image %d (%d images seen)'
                      % (counters['epoch'], counters['epoch_iter'], counters['total_iters']))
    if main_process:
        print('The number of training images = %d (per process)' % len(dataset))

    def save(label):
        distributed.barrier()
        if main_process:
            model.save_networks(label)
            model.save_training_state(label, counters)
        distributed.barrier()

    with StopRequest() as stop:
        for epoch in range(counters['epoch'], last_epoch + 1):
            counters['epoch'] = epoch
            if counters['epoch_iter'] == 0:
                model.update_learning_rate()  # the official code steps the schedule at the start of each epoch
            dataset.set_epoch(epoch, skip=counters['epoch_iter'])
            bar = tqdm(dataset, total=-(-(len(dataset) - counters['epoch_iter']) // opt.batch_size),
                       desc='epoch %d/%d' % (epoch, last_epoch), unit='it', dynamic_ncols=True, file=sys.stdout,
                       mininterval=0.1 if sys.stdout.isatty() else 30, disable=not main_process)
            iter_data_time = time.time()
            for data in bar:
                iter_start_time = time.time()
                batch = data['A'].shape[0]
                model.set_input(data)
                try:
                    model.optimize_parameters()
                except FloatingPointError as exc:
                    raise UserError('epoch %d, iteration %d: %s; the last checkpoint is kept (--nan_policy skip '
                                    'skips such steps)' % (epoch, counters['total_iters'] + batch, exc)) from None
                except torch.cuda.OutOfMemoryError:
                    raise UserError('epoch %d, iteration %d: out of GPU memory at --crop_size %d, --batch_size %d; '
                                    'try --activation_checkpointing, --amp bf16 or a smaller --crop_size; the last '
                                    'checkpoint is kept' % (epoch, counters['total_iters'] + batch, opt.crop_size,
                                                            opt.batch_size)) from None
                counters['total_iters'] += batch
                counters['epoch_iter'] += batch
                total = counters['total_iters']
                if crossed(total, batch, opt.display_freq) and main_process:
                    model.compute_visuals()
                    visualizer.display_current_results(model.get_current_visuals(), epoch, total,
                                                       crossed(total, batch, opt.update_html_freq))
                losses = model.get_current_losses()
                if crossed(total, batch, opt.print_freq) and main_process:
                    t_comp = (time.time() - iter_start_time) / batch
                    visualizer.print_current_losses(epoch, counters['epoch_iter'], losses, t_comp,
                                                    iter_start_time - iter_data_time)
                    visualizer.plot_current_losses(epoch, counters['epoch_iter'] / len(dataset), losses)
                bar.set_postfix({k: '%.3f' % losses[k] for k in ('G_A', 'cycle_A', 'D_A', 'H')}, refresh=False)
                if crossed(total, batch, opt.save_latest_freq):
                    save('iter_%d' % total if opt.save_by_iter else 'latest')
                if distributed.any_rank(stop.requested):
                    bar.close()
                    save('latest')
                    if main_process:
                        print('stopped: saved %s/latest_* at epoch %d, image %d; resume with --continue_train'
                              % (model.save_dir, epoch, counters['epoch_iter']))
                    return 130
                iter_data_time = time.time()
            bar.close()
            counters.update(epoch_done=True)
            if epoch % opt.save_epoch_freq == 0 or epoch == last_epoch:
                save('latest')
                if epoch % opt.save_epoch_freq == 0:
                    save(epoch)
            counters.update(epoch_iter=0, epoch_done=False)
            if main_process and visualizer.use_html:
                visualizer.save_page()
    if distributed.world_size() > 1:
        nets = [getattr(model, 'net' + name) for name in model.model_names]
        if not distributed.parameters_agree(nets):
            raise UserError('the processes ended with different weights; please report this')
        if main_process:
            print('weights identical on all %d processes' % distributed.world_size())
    if main_process:
        print('checkpoints: %s' % model.save_dir)
        if visualizer.use_html:
            print('training results page: %s' % visualizer.save_page())
    return 0


def main(argv=None):
    try:
        return train(TrainOptions().parse(argv))
    except UserError as exc:
        message = str(exc).strip().splitlines()[-1]
        sys.exit('error: %s' % message.split('UserError: ', 1)[-1])
    finally:
        distributed.cleanup()


if __name__ == '__main__':
    sys.exit(main())
