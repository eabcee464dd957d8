"""Train NeRCo on unpaired images: python train.py --dataroot ./dataset --name LSRW

<dataroot>/trainA holds low-light images, <dataroot>/trainB normal-light ones. Checkpoints, the loss log and the
intermediate-results page (web/index.html) go to <checkpoints_dir>/<name>/. Ctrl-C or SIGTERM saves `latest` and
stops; --continue_train resumes exactly where a run stopped.
"""
import math
import os
import random
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

from data import create_dataset
from metrics.evaluation import LOWER_IS_BETTER
from models import checkpoints, create_model, networks
from options.train_options import TrainOptions
from training.run import RunFolder, StopRequest, check_disk_space, warn_about_zero_learning_rate
from training.state import RunState, load_training_state, save_checkpoint
from training.validation import Validator
from training.visualizer import Visualizer
from util import distributed, runtime
from util.util import UserError, command, one_line


def choose_seed(opt):
    """--seed, else the seed of the run being continued, else a fresh one; seeds python, numpy and torch."""
    if opt.seed is None and opt.continue_train:
        folder = os.path.join(opt.checkpoints_dir, opt.name)
        state = checkpoints.read_training_state(checkpoints.state_path(folder, checkpoints.label(opt)))
        opt.seed = state['counters']['seed'] if state else None
    if opt.seed is None:
        opt.seed = distributed.broadcast_object(random.SystemRandom().randrange(2 ** 31))
    process_seed = opt.seed + distributed.rank()  # image pools and edge projections differ between processes
    random.seed(process_seed)
    np.random.seed(process_seed % 2 ** 32)
    torch.manual_seed(process_seed)


def resume(model, opt):
    """The RunState to start from: a fresh run's, or (--continue_train) the one saved with the checkpoint, whose
    optimizers, schedulers, image pools and random state are then restored too."""
    run = load_training_state(model, checkpoints.label(opt)) if opt.continue_train else None
    if run is None:
        return RunState(seed=opt.seed, epoch=opt.epoch_count)
    if run.epoch_done:
        run.next_epoch()
    if distributed.is_main():
        print('resuming at epoch %d, image %d (%d images seen)' % (run.epoch, run.epoch_iter, run.total_iters))
    return run


def train_step(model, opt, run, batch):
    """One optimisation step on the current input; a non-finite loss (--nan_policy stop) or running out of GPU
    memory ends the run with one line (the last checkpoint stays as it is)."""
    where = 'epoch %d, iteration %d' % (run.epoch, run.total_iters + batch)
    try:
        model.optimize_parameters()
    except FloatingPointError as exc:
        raise UserError('%s: %s; the last checkpoint is kept (--nan_policy skip skips such steps)'
                        % (where, exc)) from None
    except torch.cuda.OutOfMemoryError:
        raise UserError('%s: out of GPU memory at --crop_size %d, --batch_size %d; try --activation_checkpointing, '
                        '--amp bf16 or a smaller --crop_size; the last checkpoint is kept'
                        % (where, opt.crop_size, opt.batch_size)) from None
    run.advance(batch)


def save(model, label, run):
    """Rank 0 writes the networks and the training state under label; the other processes wait for it."""
    distributed.barrier()
    if distributed.is_main():
        save_checkpoint(model, label, run)
    distributed.barrier()


def validate(model, validator, visualizer, run):
    """Validate on rank 0 (the other processes wait for its result); when the metric improves, save the `best`
    checkpoint set, then best.json; step a plateau schedule on the metric. Once per iteration at most."""
    if run.validated_at == run.total_iters:
        return
    run.validated_at = run.total_iters
    distributed.barrier()
    result = None
    if validator:
        try:
            metrics = validator(model, run.epoch, run.total_iters)
        except UserError as exc:
            raise saving_latest(model, run, exc) from None
        visualizer.validated(metrics, run.seen())
        value = metrics.get(validator.metric, float('nan'))
        result = validator.improved(value), value, validator.metric not in LOWER_IS_BETTER
    improved, value, higher_is_better = distributed.broadcast_object(result)
    if improved:
        save(model, 'best', run)
        if validator:
            validator.record_best(run.epoch, run.total_iters)
    if not math.isnan(value):
        model.update_learning_rate(value, higher_is_better)


def saving_latest(model, run, exc):
    """The UserError that stops the run for bad data (exc: too many unreadable training images, an unreadable
    validation image), after `latest` is saved, as for any other stop, if this process has trained since it
    started."""
    if not (run.trained_here and distributed.is_main()):
        return exc
    save_checkpoint(model, 'latest', run)  # without barriers: another process may be the one that failed
    return UserError('%s (saved %s/latest_* at epoch %d, image %d first; resume with --continue_train)'
                     % (one_line(exc), model.save_dir, run.epoch, run.epoch_iter))


def batches(loader, model, run):
    """The batches of the loader; when reading one fails, the run stops with `latest` saved (saving_latest)."""
    iterator = iter(loader)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except UserError as exc:
            raise saving_latest(model, run, exc) from None
        yield batch


def run_epoch(model, dataset, visualizer, validator, opt, run, stop):
    """Train the rest of the current epoch, validating when --val_freq / --val_freq_iters come round; False when a
    stop was requested (after saving `latest`)."""
    epoch, last_epoch = run.epoch, opt.n_epochs + opt.n_epochs_decay
    if run.epoch_iter == 0 and not opt.lr_step_after_epoch:
        model.update_learning_rate()  # the official code steps the schedule at the start of each epoch
    dataset.set_epoch(epoch, skip=run.epoch_iter)
    bar = tqdm(dataset, total=-(-(len(dataset) - run.epoch_iter) // opt.batch_size),
               desc='epoch %d/%d' % (epoch, last_epoch), unit='it', dynamic_ncols=True, file=sys.stdout,
               mininterval=0.1 if sys.stdout.isatty() else 30, disable=not distributed.is_main())
    loaded = time.time()
    for data in batches(bar, model, run):
        started, batch = time.time(), data['A'].shape[0]
        model.set_input(data)
        train_step(model, opt, run, batch)
        if visualizer:
            visualizer.stepped(model, run, batch, time.time() - started, started - loaded, len(dataset))
        if opt.val_dataroot and run.crossed(opt.val_freq_iters, batch):
            validate(model, validator, visualizer, run)
        postfix = {name: '%.3f' % value for name, value in model.get_current_losses(model.progress_names).items()}
        if validator and validator.last:
            postfix['val_' + validator.metric] = '%.4f' % validator.last.get(validator.metric, float('nan'))
        bar.set_postfix(postfix, refresh=False)
        if run.crossed(opt.save_latest_freq, batch):
            save(model, 'iter_%d' % run.total_iters if opt.save_by_iter else 'latest', run)
        if distributed.any_rank(stop.requested):
            bar.close()
            save(model, 'latest', run)
            return False
        loaded = time.time()
    bar.close()
    if opt.lr_step_after_epoch:
        model.update_learning_rate()
    run.epoch_done = True
    if opt.val_dataroot and epoch % opt.val_freq == 0:
        validate(model, validator, visualizer, run)
    if epoch % opt.save_epoch_freq == 0 or epoch == last_epoch:
        save(model, 'latest', run)
        if epoch % opt.save_epoch_freq == 0:
            save(model, epoch, run)
    run.next_epoch()
    return True


def start(options, opt, model, run, images):
    """Rank 0's validator, display and loggers, made before the run's options are written, so that a refusal (of
    --continue_train, a validation set, an unwritable log folder) leaves a run's options as they were."""
    validator = Validator(opt, model.save_dir) if opt.val_dataroot else None
    visualizer = Visualizer(opt, run.seen())
    warn_about_zero_learning_rate(opt, run.epoch)
    if opt.overwrite and not opt.continue_train:  # stale sets would be served as this run's (--epoch best, 200)
        earlier = checkpoints.remove_sets(model.save_dir)
        if os.path.isfile(os.path.join(model.save_dir, 'best.json')):
            os.remove(os.path.join(model.save_dir, 'best.json'))
        if earlier:
            print('note: --overwrite: removed the earlier run\'s checkpoints (%s) from %s'
                  % (', '.join(earlier), model.save_dir), file=sys.stderr)
    options.save(opt, model.save_dir)
    print('The number of training images = %d (per process)' % images)
    print('logs: ' + '; '.join(visualizer.places()))
    return visualizer, validator


def train(options, opt):
    """The whole run; returns the exit status (130 when stopped by Ctrl-C or SIGTERM, after saving `latest`)."""
    choose_seed(opt)
    dataset = create_dataset(opt)
    if 'crop' not in opt.preprocess:
        dataset.dataset.check_uncropped_sizes(networks.SIDE_MULTIPLE[opt.netG])
    model = create_model(opt)
    model.setup(opt)
    main_process = distributed.is_main()
    if main_process:
        check_disk_space(model)
    run = resume(model, opt)
    visualizer, validator = distributed.main_only(lambda: start(options, opt, model, run, len(dataset))) or (None, None)
    try:
        with StopRequest() as stop:
            while run.epoch <= opt.n_epochs + opt.n_epochs_decay:
                if not run_epoch(model, dataset, visualizer, validator, opt, run, stop):
                    if main_process:
                        print('stopped: saved %s/latest_* at epoch %d, image %d; resume with --continue_train'
                              % (model.save_dir, run.epoch, run.epoch_iter))
                    return 130
                if main_process and visualizer.use_html:
                    visualizer.save_page()
        if distributed.world_size() > 1 and not distributed.parameters_agree(model.networks()):
            raise UserError('the processes ended with different weights; please report this')
        if main_process:
            if distributed.world_size() > 1:
                print('weights identical on all %d processes' % distributed.world_size())
            print('checkpoints: %s' % model.save_dir)
            if visualizer.use_html:
                print('training results page: %s' % visualizer.save_page())
            best = validator.best if validator else None
            visualizer.finish(best, best and best['iteration'] * distributed.world_size())
        return 0
    finally:
        if visualizer:
            visualizer.close()


@command(torchrun=True)
def main(argv=None):
    options = TrainOptions()
    opt = options.parse(argv)
    try:
        runtime.setup(opt)
        with RunFolder(opt):
            return train(options, opt)
    finally:
        distributed.cleanup()


if __name__ == '__main__':
    sys.exit(main())
