"""Training display: loss log, the intermediate-results page with its charts, and visdom when a server answers."""
import glob
import os
import re
import sys
import time
import urllib.error
import urllib.request
from collections import OrderedDict

import numpy as np

from util import html as html_page
from util.images import save_image, to_uint8
from util.util import made_again
from training import charts
from training.loggers import Loggers
from training.validation import METRICS, read_best_record, read_history

LOG_LINE = re.compile(r'\(epoch: (\d+), iters: (\d+)[^)]*\) (.*)')
RESULT_NAME = re.compile(r'epoch(\d+)_iter(\d+)_(.+)\.png$')
SHOWN_VALIDATIONS = 10
PAGE_WIDTH = 1280  # pixels a row of training visuals may take
VALIDATION_NAME = re.compile(r'val_(epoch\d+_iter\d+)_')


def warn(message):
    print('warning: ' + message, file=sys.stderr)


def connect_visdom(opt):
    """A visdom client when --display_id > 0, visdom is installed and its server answers; otherwise None, with one
    warning (never a retry loop)."""
    if opt.display_id <= 0:
        return None
    url = '%s:%d' % (opt.display_server, opt.display_port)
    try:
        import visdom
    except ImportError:
        warn('--display_id %d: visdom is not installed (make visdom installs it); no live display'
             % opt.display_id)
        return None
    try:
        urllib.request.urlopen(url, timeout=2).close()
    except (urllib.error.URLError, OSError, ValueError):
        warn('no visdom server answers at %s (start one with python -m visdom.server, or pass --display_id 0); '
             'training goes on without the live display' % url)
        return None
    return visdom.Visdom(server=opt.display_server, port=opt.display_port, env=opt.display_env,
                         use_incoming_socket=False, raise_exceptions=False)


def read_loss_log(path):
    """[(epoch, iters, {loss: value})] from a loss_log.txt."""
    history = []
    if os.path.isfile(path):
        with open(path) as f:
            for line in f:
                match = LOG_LINE.match(line.strip())
                if match:
                    values = dict(re.findall(r'(\S+): (\S+)', match.group(3)))
                    history.append((int(match.group(1)), int(match.group(2)),
                                    {k: float(v) for k, v in values.items()}))
    return history


class Visualizer:
    """The one reporting front of a training run (rank 0): writes checkpoints_dir/name/loss_log.txt and the page
    checkpoints_dir/name/web/index.html (newest results first, loss chart on top), and mirrors both to visdom when
    it is available and to TensorBoard and W&B when asked (training/loggers.py; resume_step: the images seen when
    this run starts). train.py tells it of each step (stepped) and validation (validated); what is reported comes
    from the model (its visual_names, loss_names and learning_rates)."""

    def __init__(self, opt, resume_step=0):
        self.opt = opt
        self.loggers = Loggers(opt, os.path.join(opt.checkpoints_dir, opt.name), resume_step)
        self.name = opt.name
        self.win_size = opt.display_winsize
        self.use_html = opt.isTrain and not opt.no_html
        expr_dir = os.path.join(opt.checkpoints_dir, opt.name)
        self.web_dir = os.path.join(expr_dir, 'web')
        self.img_dir = os.path.join(self.web_dir, 'images')
        self.log_name = os.path.join(expr_dir, 'loss_log.txt')
        os.makedirs(self.img_dir, exist_ok=True)
        with open(self.log_name, 'a') as log_file:
            log_file.write('================ Training Loss (%s) ================\n' % time.strftime('%c'))
        self.vis = connect_visdom(opt)
        self.plot_data = {'X': [], 'Y': [], 'legend': []}
        self.visual_order = []

    def places(self):
        """Where this run's logs go, for the start-up line."""
        places = [self.log_name]
        if self.use_html:
            places.append('page %s' % os.path.join(self.web_dir, 'index.html'))
        if 'TensorBoard' in self.loggers.active:
            places.append('TensorBoard: tensorboard --logdir %s' % os.path.join(os.path.dirname(self.log_name),
                                                                                'tensorboard'))
        return places

    def stepped(self, model, run, batch, step_seconds, data_seconds, epoch_size):
        """After a training step of batch images: show (and with --update_html_freq save) the model's visuals when
        --display_freq comes round; log its losses, learning rates and speed when --print_freq does."""
        opt, seen = self.opt, run.seen()
        if run.crossed(opt.display_freq, batch):
            self.display_current_results(model.get_current_visuals(), run.epoch, run.total_iters,
                                         run.crossed(opt.update_html_freq, batch), seen)
        if run.crossed(opt.print_freq, batch):
            losses = model.get_current_losses()
            self.log_losses(run.epoch, run.epoch_iter, losses, step_seconds / batch, data_seconds)
            self.plot_current_losses(run.epoch, run.epoch_iter / epoch_size, losses)
            rates = {'lr/' + name: rate for name, rate in model.learning_rates().items()}
            self.loggers.scalars({**{'loss/' + k: v for k, v in losses.items()}, **rates,
                                  'speed/iterations_per_second': 1 / step_seconds}, seen)

    def validated(self, metrics, seen):
        self.loggers.scalars({'val/' + name: value for name, value in metrics.items()}, seen)

    def finish(self, best, step):
        """The best validation result (reached at step) to the loggers, which are then closed."""
        self.loggers.finish(self.opt, best, step)

    def close(self):
        self.loggers.close()

    def display_current_results(self, visuals, epoch, total_iters, save_result, seen=0):
        """Show the visuals on visdom (and the loggers, at seen images); with save_result, also save them and rebuild
        the results page."""
        images = OrderedDict((label, to_uint8(image[:1])[0]) for label, image in visuals.items())
        self.visual_order = list(images)
        self.loggers.images(images, seen)
        if self.vis is not None:
            stack = [image.transpose([2, 0, 1]) for image in images.values()]
            self.vis.images(stack, nrow=max(self.opt.display_ncols, 1), win=self.opt.display_id + 1,
                            opts={'title': self.name + ' images', 'caption': ' '.join(images)})
        if self.use_html and save_result:
            made_again(self.img_dir, "The training page's folder")
            for label, image in images.items():
                save_image(image, os.path.join(self.img_dir, 'epoch%03d_iter%08d_%s.png' % (epoch, total_iters, label)))
            self.save_page()

    def save_page(self):
        """Rebuild index.html from the saved images (newest first), the loss log and the validation log."""
        webpage = html_page.HTML(self.web_dir, 'Experiment name = %s' % self.name)
        webpage.add_header('Losses')
        history = read_loss_log(self.log_name)
        if len(history) < 2:
            webpage.add_raw('<p>The loss charts appear after two logged steps.</p>')
        else:
            self.add_chart(webpage, charts.loss_figure(history), 'loss_chart.png', 'losses by group')
        folder = os.path.dirname(self.log_name)
        validations = read_history(os.path.join(folder, 'val_metrics.csv'))
        if validations:
            webpage.add_header('Validation')
            self.add_chart(webpage, charts.validation_figure(validations, read_best_record(folder)),
                           'validation_chart.png',
                           'validation metrics')
            self.add_validation_samples(webpage, {(row['epoch'], row['iteration']): row for row in validations})
        groups = OrderedDict()
        for path in sorted(glob.glob(os.path.join(glob.escape(self.img_dir), 'epoch*_iter*_*.png')), reverse=True):
            match = RESULT_NAME.search(os.path.basename(path))
            if match:
                groups.setdefault((int(match.group(1)), int(match.group(2))), []).append(
                    (match.group(3), os.path.basename(path)))
        for (epoch, iters), items in sorted(groups.items(), reverse=True):
            order = {name: i for i, name in enumerate(self.visual_order)}
            items.sort(key=lambda item: order.get(item[0], len(order)))
            webpage.add_header('epoch %d, iteration %d' % (epoch, iters))
            links = ['images/' + filename for _, filename in items]
            webpage.add_images(links, [label for label, _ in items], links, width=min(self.win_size, PAGE_WIDTH //
                                                                                       len(items)))
        return webpage.save()

    def add_chart(self, webpage, figure, name, what):
        charts.save(figure, os.path.join(self.web_dir, name))
        webpage.add_raw('<p><img src="%s" alt="%s" style="max-width: 100%%"></p>' % (name, what))

    def add_validation_samples(self, webpage, scores):
        """The validation inputs, then their outputs at the last few validations, newest first."""
        inputs = sorted(glob.glob(os.path.join(glob.escape(self.img_dir), 'val_input_*.png')))
        stems = [os.path.basename(path)[len('val_input_'):-len('.png')] for path in inputs]
        links = ['images/' + os.path.basename(path) for path in inputs]
        webpage.add_images(links, ['input ' + stem for stem in stems], links, width=self.win_size // 2)
        times = sorted({VALIDATION_NAME.match(os.path.basename(path)).group(1)
                        for path in glob.glob(os.path.join(glob.escape(self.img_dir), 'val_epoch*_iter*_*.png'))},
                       reverse=True)
        for when in times[:SHOWN_VALIDATIONS]:
            links = ['images/val_%s_%s.png' % (when, stem) for stem in stems
                     if os.path.isfile(os.path.join(self.img_dir, 'val_%s_%s.png' % (when, stem)))]
            epoch, iteration = map(int, re.findall(r'\d+', when))
            row = scores.get((epoch, iteration), {})
            webpage.add_header('validation at epoch %d, iteration %d%s' % (epoch, iteration, ''.join(
                '; %s %.4g' % (name, row[name]) for name in METRICS if name in row)))
            webpage.add_images(links, stems, links, width=self.win_size // 2)

    def plot_current_losses(self, epoch, counter_ratio, losses):
        if self.vis is None:
            return
        if not self.plot_data['legend']:
            self.plot_data['legend'] = list(losses)
        self.plot_data['X'].append(epoch + counter_ratio)
        self.plot_data['Y'].append([losses[k] for k in self.plot_data['legend']])
        n = len(self.plot_data['legend'])
        self.vis.line(X=np.stack([np.array(self.plot_data['X'])] * n, 1), Y=np.array(self.plot_data['Y']),
                      win=self.opt.display_id,
                      opts={'title': self.name + ' loss over time', 'legend': self.plot_data['legend'],
                            'xlabel': 'epoch', 'ylabel': 'loss'})

    def log_losses(self, epoch, iters, losses, t_comp, t_data):
        """Append one line to loss_log.txt (the official format) and return it."""
        message = '(epoch: %d, iters: %d, time: %.3f, data: %.3f) ' % (epoch, iters, t_comp, t_data)
        message += ' '.join('%s: %.3f' % (k, v) for k, v in losses.items())
        with open(self.log_name, 'a') as log_file:
            log_file.write(message + '\n')
        return message
