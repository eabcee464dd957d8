"""Train NeRCo on unpaired images: python train.py --dataroot ./dataset --name LSRW

<dataroot>/trainA holds low-light images, <dataroot>/trainB normal-light ones. Checkpoints, the loss log and the
intermediate-results page (web/index.html) go to <checkpoints_dir>/<name>/.
"""
import sys
import time

from tqdm import tqdm

from data import create_dataset
from models import create_model
from options.train_options import TrainOptions
from util.util import UserError
from util.visualizer import Visualizer


def crossed(total, step, freq):
    """Whether the iteration counter passed a multiple of freq in its last step of `step` images."""
    return freq > 0 and total // freq > (total - step) // freq


def save(model, label, epoch, total_iters, epoch_done):
    model.save_networks(label)
    model.save_training_state(label, epoch, total_iters, epoch_done)


def train(opt):
    dataset = create_dataset(opt)
    model = create_model(opt)
    model.setup(opt)
    visualizer = Visualizer(opt)
    last_epoch = opt.n_epochs + opt.n_epochs_decay
    first_epoch, total_iters, resume_mid_epoch = opt.epoch_count, 0, False
    if opt.continue_train:
        resumed = model.load_training_state(model.load_suffix(opt))
        if resumed is not None:
            epoch, total_iters, epoch_done = resumed
            first_epoch, resume_mid_epoch = (epoch + 1, False) if epoch_done else (epoch, True)
            print('resuming at epoch %d (%d images seen)' % (first_epoch, total_iters))
    print('The number of training images = %d' % len(dataset))

    for epoch in range(first_epoch, last_epoch + 1):
        if not (resume_mid_epoch and epoch == first_epoch):
            model.update_learning_rate()  # the official code steps the schedule at the start of each epoch
        epoch_iter = 0
        bar = tqdm(dataset, total=-(-len(dataset) // opt.batch_size), desc='epoch %d/%d' % (epoch, last_epoch),
                   unit='it', dynamic_ncols=True, file=sys.stdout,
                   mininterval=0.1 if sys.stdout.isatty() else 30)
        iter_data_time = time.time()
        for data in bar:
            iter_start_time = time.time()
            batch = data['A'].shape[0]
            total_iters += batch
            epoch_iter += batch
            model.set_input(data)
            model.optimize_parameters()
            if crossed(total_iters, batch, opt.display_freq):
                model.compute_visuals()
                visualizer.display_current_results(model.get_current_visuals(), epoch, total_iters,
                                                   crossed(total_iters, batch, opt.update_html_freq))
            losses = model.get_current_losses()
            if crossed(total_iters, batch, opt.print_freq):
                t_comp = (time.time() - iter_start_time) / batch
                visualizer.print_current_losses(epoch, epoch_iter, losses, t_comp, iter_start_time - iter_data_time)
                visualizer.plot_current_losses(epoch, epoch_iter / len(dataset), losses)
            bar.set_postfix({k: '%.3f' % losses[k] for k in ('G_A', 'cycle_A', 'D_A', 'H')}, refresh=False)
            if crossed(total_iters, batch, opt.save_latest_freq):
                save(model, 'iter_%d' % total_iters if opt.save_by_iter else 'latest', epoch, total_iters, False)
            iter_data_time = time.time()
        bar.close()
        if epoch % opt.save_epoch_freq == 0 or epoch == last_epoch:
            save(model, 'latest', epoch, total_iters, True)
            if epoch % opt.save_epoch_freq == 0:
                save(model, epoch, epoch, total_iters, True)
        if visualizer.use_html:
            visualizer.save_page()
    print('checkpoints: %s' % model.save_dir)
    if visualizer.use_html:
        print('training results page: %s' % visualizer.save_page())


def main(argv=None):
    try:
        train(TrainOptions().parse(argv))
    except UserError as exc:
        sys.exit('error: %s' % exc)


if __name__ == '__main__':
    main()
