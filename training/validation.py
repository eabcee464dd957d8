"""Validation during training: the inference path (Pre, H, G_A) on a fixed set of validation images, scored with
PSNR / SSIM / LPIPS against ground truth where there is one and NIQE always; the log, the CSV, sample outputs for
the training page, and the record of the best value."""
import csv
import io
import math
import os
import sys
import time

import numpy as np

from metrics import scores
from metrics.evaluation import LOWER_IS_BETTER, column_means, image_scores
from models.inference import Enhancer
from util.images import find_images, fitting, images_by_stem, load_rgb, save_image
from util.util import UserError, atomic_write, read_json, strict_json

REFERENCE_METRICS = ('psnr', 'ssim', 'lpips')
# what a validation scores, in the order of val_metrics.csv
METRICS = REFERENCE_METRICS + ('niqe',)
SAMPLES = 3
SAMPLE_STEM_BYTES = 200  # bytes a validation image's stem keeps in its samples' names


class Validator:
    """Scores a model's enhancements of <val_dataroot>/testA (at most --val_max images, the first in name order, so
    curves stay comparable), against <val_dataroot>/testB paired by file stem when it exists. Writes val_log.txt,
    val_metrics.csv and, for the first few images, web/images/val_* samples into the run's folder; keeps the best
    value of --val_metric in best.json."""

    def __init__(self, opt, folder):
        source = os.path.join(opt.val_dataroot, 'testA')
        self.paths = find_images(source)[:opt.val_max or None] if os.path.isdir(source) else []
        if not self.paths:
            raise UserError('--val_dataroot %s: %s holds no images; it should hold the low-light validation images'
                            % (opt.val_dataroot, source))
        truth_folder = os.path.join(opt.val_dataroot, 'testB')
        truths = images_by_stem(truth_folder, what='validation ground truth') if os.path.isdir(truth_folder) else {}
        self.truths = {path: truths[stem] for path in self.paths
                       if (stem := os.path.splitext(os.path.basename(path))[0]) in truths}
        self.metric = opt.val_metric or ('psnr' if self.truths else 'niqe')
        if self.metric in REFERENCE_METRICS and not self.truths:
            raise UserError('--val_metric %s needs ground truth: %s holds no image named like those in %s'
                            % (self.metric, truth_folder, source))
        self.folder = folder
        self.scorers = {'niqe': scores.NIQE(opt.niqe_channel), 'lpips': self.load_lpips(opt) if self.truths else None,
                        'ssim_mode': 'gaussian'}
        # A continued run adds to its record; a new one (--overwrite) starts its own.
        self.source = opt.val_dataroot
        self.names = [os.path.relpath(path, source) for path in self.paths]
        self.best = self.read_best() if opt.continue_train else None
        self.rows = read_history(os.path.join(folder, 'val_metrics.csv')) if opt.continue_train else []
        self.last = None
        self.check_images()

    def check_images(self):
        """Read every validation image and ground truth once now, so that an unreadable file, or a ground truth of
        another size, stops the run at its start rather than at its first validation; warn when NIQE, the metric
        that chooses the best checkpoint, can score none of them."""
        niqe_blocks = []
        for path in self.paths:
            image = read_image(path)
            niqe_blocks.append((image.shape[0] // scores.NIQE_BLOCK) * (image.shape[1] // scores.NIQE_BLOCK))
            if path in self.truths and read_image(self.truths[path]).shape != image.shape:
                raise UserError('--val_dataroot: %s and its ground truth %s differ in size; they must have the same '
                                'size' % (path, self.truths[path]))
        if self.metric == 'niqe' and max(niqe_blocks) < 2:
            print('warning: --val_dataroot %s: no image has two 96x96 blocks, which NIQE needs, so no best checkpoint '
                  'can be chosen (test.py --epoch best will find none); add larger images, or ground truth (testB) '
                  'for --val_metric psnr' % self.source, file=sys.stderr)

    def load_lpips(self, opt):
        try:
            return scores.LPIPS(opt.device)
        except FileNotFoundError as exc:
            if self.metric == 'lpips':
                raise UserError('--val_metric lpips: %s' % exc) from None
            print('validation: %s' % exc)
            return None

    def read_best(self):
        best = read_best_record(self.folder)
        if best is None:
            return None
        path = os.path.join(self.folder, 'best.json')
        names = best.get('val_images', self.names)
        if best['metric'] != self.metric or names != self.names:
            raise UserError('--val_metric %s on --val_dataroot %s: the best checkpoint of this run was chosen by %s '
                            'on %s (%s); continue with that metric and set, or %s'
                            % (self.metric, self.source, best['metric'], 'these images' if names == self.names else
                               'other images (%d: %s)' % (len(names), ', '.join(names[:3])), path, NEW_RECORD))
        return best

    def score(self, output, path):
        """{metric: value} for one enhanced image (uint8 array) of the input at path."""
        truth = read_image(self.truths[path]) if path in self.truths else None
        return image_scores(output, path, truth, self.truths.get(path), self.scorers)

    def __call__(self, model, epoch, iters):
        """Validate model's inference networks (in eval mode, with the run's --amp) and log the means; returns
        them."""
        started = time.time()
        rows = []
        with Enhancer(model).evaluating() as enhance:
            for i, path in enumerate(self.paths):
                image = read_image(path)
                output = enhance(image)
                rows.append(self.score(output, path))
                if i < SAMPLES:
                    self.save_sample(image, output, path, epoch, iters)
        means = column_means(rows, METRICS)
        skipped = {name: sum(math.isnan(row.get(name, 0)) for row in rows) for name in means}
        self.log(epoch, iters, means, skipped, time.time() - started)
        self.last = means
        return means

    def save_sample(self, image, output, path, epoch, iters):
        """The input (once) and this validation's output of the image at path, for the training page."""
        # within the file system's 255 bytes beside 'val_epoch001_iter00000008_' and '.png'
        stem = fitting(os.path.splitext(os.path.basename(path))[0], path, SAMPLE_STEM_BYTES)
        images = os.path.join(self.folder, 'web', 'images')
        os.makedirs(images, exist_ok=True)
        input_path = os.path.join(images, 'val_input_%s.png' % stem)
        if not os.path.isfile(input_path):
            save_image(image, input_path)
        save_image(output, os.path.join(images, 'val_epoch%03d_iter%08d_%s.png' % (epoch, iters, stem)))

    def log(self, epoch, iters, means, skipped, seconds):
        values = ', '.join('%s %.4f' % (name.upper(), value) for name, value in means.items())
        notes = ''.join('; %s left out %d image(s) too small for it' % (name.upper(), n)
                        for name, n in skipped.items() if n)
        line = 'validation (epoch %d, iters %d): %s over %d image(s) in %.1f s%s' % (
            epoch, iters, values, len(self.paths), seconds, notes)
        print(line)
        with open(os.path.join(self.folder, 'val_log.txt'), 'a') as f:
            f.write(line + '\n')
        self.rows.append({'epoch': epoch, 'iteration': iters, 'seconds': round(seconds, 2), **means})
        text = io.StringIO()
        writer = csv.DictWriter(text, ['epoch', 'iteration', *METRICS, 'seconds'], restval='')
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write(os.path.join(self.folder, 'val_metrics.csv'), lambda f: f.write(text.getvalue().encode()))

    def improved(self, value):
        """Whether value of the metric is a new best (NaN never is)."""
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        return value < self.best['value'] if self.metric in LOWER_IS_BETTER else value > self.best['value']

    def record_best(self, epoch, iters):
        """Write best.json for the last validation (once the best checkpoint set is in place)."""
        self.best = {'epoch': epoch, 'iteration': iters, 'metric': self.metric, 'value': self.last[self.metric],
                     'val_images': self.names}
        text = strict_json(self.best).encode()
        atomic_write(os.path.join(self.folder, 'best.json'), lambda f: f.write(text))
        print('best %s so far: %.4f (epoch %d, iters %d), saved as best_net_*.pth'
              % (self.metric.upper(), self.best['value'], epoch, iters))


def read_image(path):
    """A validation image as an (H, W, 3) uint8 array; a UserError naming the file if it cannot be read."""
    try:
        return np.array(load_rgb(path))
    except Exception as exc:
        raise UserError('--val_dataroot: %s cannot be read (%s: %s); fix or remove it'
                        % (path, exc.__class__.__name__, exc)) from None


NEW_RECORD = 'move it and the best_net_*.pth files away to start a new record'


def read_best_record(folder):
    """The best.json of the run in folder ({'metric', 'epoch', 'iteration', 'value', ...}), or None when there is none;
    a UserError naming it when it is not such a record."""
    path = os.path.join(folder, 'best.json')
    if not os.path.isfile(path):
        return None
    best = read_json(path, 'restore it, or ' + NEW_RECORD)
    if not isinstance(best, dict) or not isinstance(best.get('metric'), str):
        raise UserError('%s: not a best-checkpoint record (a JSON object with "metric"); restore it, or %s'
                        % (path, NEW_RECORD))
    return best


def read_history(path):
    """The rows of a val_metrics.csv, numbers as numbers; [] when there is none."""
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return [{k: (float(v) if k not in ('epoch', 'iteration') else int(v)) for k, v in row.items() if v != ''}
                for row in csv.DictReader(f)]
