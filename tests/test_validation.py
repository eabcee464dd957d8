"""Validation during training: one logged row per validation, the metric chart and samples on the training page,
the best checkpoint and its record (kept across --continue_train), test.py / load_enhancer with --epoch best, NIQE
when there is no ground truth, and a plateau schedule stepped on the metric."""
import csv
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

import train as train_script
from conftest import build_model, train_options
from helpers import (TINY, fake_alexnet, make_dataset_folders, make_validation_set,
                     referenced_files_exist, run_script, train_argv, write_image)
from enhancer import load_enhancer
from metrics import scores as metrics
from models.NeRCo_model import NeRCoModel
from training.validation import Validator
from util.util import UserError


def logged(folder):
    with open(os.path.join(folder, 'val_metrics.csv')) as f:
        return list(csv.DictReader(f))


def test_validation_logs_keeps_the_best_and_resumes_with_its_record(tmp_path):
    make_dataset_folders(str(tmp_path / 'data'))
    val = make_validation_set(str(tmp_path / 'val'))
    argv = train_argv(tmp_path, '--n_epochs', '2', '--val_dataroot', val, '--val_freq_iters', '3')
    argv.remove('--no_html')
    assert train_script.main(argv) == 0
    folder = str(tmp_path / 'saves' / 'run')
    rows = logged(folder)
    assert [(int(r['epoch']), int(r['iteration'])) for r in rows] == [(1, 2), (2, 3), (2, 4), (3, 6)]
    with open(os.path.join(folder, 'val_log.txt')) as f:
        assert f.read().count('validation (epoch') == 4
    psnr = [float(r['psnr']) for r in rows]
    with open(os.path.join(folder, 'best.json')) as f:
        best = json.load(f)
    first_best = rows[int(np.argmax(psnr))]
    assert (best['metric'], best['epoch'], best['iteration']) == ('psnr', int(first_best['epoch']),
                                                                   int(first_best['iteration']))
    assert best['value'] == max(psnr)
    page = os.path.join(folder, 'web', 'index.html')
    refs = referenced_files_exist(page)
    assert 'images/val_input_v0.png' in refs and 'images/val_epoch003_iter00000006_v0.png' in refs
    assert 'loss_chart.png' in refs and 'validation_chart.png' in refs  # drawn with matplotlib (test below)
    text = ' '.join(open(page).read().split())
    assert 'validation at epoch 3, iteration 6; psnr %.4g' % float(rows[-1]['psnr']) in text  # outputs with scores

    # best_net_*.pth enhances to exactly the images its validation scored.
    enhance = load_enhancer(folder, epoch='best')
    scores = [metrics.psnr(enhance(np.asarray(Image.open(os.path.join(val, 'testA', 'v%d.png' % i)))),
                           np.asarray(Image.open(os.path.join(val, 'testB', 'v%d.png' % i)))) for i in range(2)]
    assert np.mean(scores) == pytest.approx(best['value'], abs=1e-9)
    result = run_script('test.py', '--dataroot', val, '--name', 'run', '--checkpoints_dir', str(tmp_path / 'saves'),
                        '--results_dir', str(tmp_path / 'results'), *TINY, '--preprocess', 'none', '--epoch', 'best')
    assert result.returncode == 0, result.stderr[-2000:]
    written = np.asarray(Image.open(tmp_path / 'results' / 'run' / 'test_best' / 'images' / 'v1_fake_B.png'))
    assert np.array_equal(written, enhance(np.asarray(Image.open(os.path.join(val, 'testA', 'v1.png')))))

    # --continue_train keeps the record: no later validation beats this one, so best_* stays as it is.
    record = dict(best, value=99.0)
    with open(os.path.join(folder, 'best.json'), 'w') as f:
        json.dump(record, f)
    before = open(os.path.join(folder, 'best_net_G_A.pth'), 'rb').read()
    assert train_script.main(argv + ['--n_epochs_decay', '2', '--continue_train']) == 0
    assert [(int(r['epoch']), int(r['iteration'])) for r in logged(folder)][4:] == [(4, 8)]
    with open(os.path.join(folder, 'best.json')) as f:
        assert json.load(f) == record
    assert open(os.path.join(folder, 'best_net_G_A.pth'), 'rb').read() == before


def test_validation_without_ground_truth_uses_niqe(tmp_path):
    make_dataset_folders(str(tmp_path / 'data'))
    val = make_validation_set(str(tmp_path / 'val'), ground_truth=False)
    assert train_script.main(train_argv(tmp_path, '--val_dataroot', val, '--n_epochs_decay', '0')) == 0
    folder = str(tmp_path / 'saves' / 'run')
    rows = logged(folder)
    assert len(rows) == 1 and rows[0]['psnr'] == '' and float(rows[0]['niqe']) > 0
    with open(os.path.join(folder, 'best.json')) as f:
        assert json.load(f)['metric'] == 'niqe'


def test_plateau_schedule_steps_on_the_validation_metric(tmp_path, capsys):
    with pytest.raises(SystemExit):
        train_options(tmp_path, '--lr_policy', 'plateau')
    assert '--lr_policy plateau steps on the validation metric: give --val_dataroot' in capsys.readouterr().err
    model = build_model(train_options(tmp_path, '--ngf', '8', '--ndf', '8', '--lr_policy', 'plateau',
                                      '--val_dataroot', str(tmp_path)))
    model.setup(model.opt)
    lr = model.optimizers[0].param_groups[0]['lr']
    model.update_learning_rate()  # the start of an epoch: not plateau's moment
    model.update_learning_rate(1.0)
    for _ in range(6):  # patience 5: the sixth validation without improvement reduces the rate
        assert model.optimizers[0].param_groups[0]['lr'] == lr
        model.update_learning_rate(1.0)
    assert model.optimizers[0].param_groups[0]['lr'] == pytest.approx(lr * 0.2)


def test_a_validation_folder_without_images_is_one_line(tmp_path):
    make_dataset_folders(str(tmp_path / 'data'))
    os.makedirs(tmp_path / 'val' / 'testA')
    with pytest.raises(SystemExit) as exit_info:
        train_script.main(train_argv(tmp_path, '--val_dataroot', str(tmp_path / 'val')))
    assert 'holds no images; it should hold the low-light validation images' in str(exit_info.value)
    assert not os.path.exists(tmp_path / 'saves' / 'run' / 'latest_net_G_A.pth')


def test_an_unreadable_validation_image_stops_the_run_at_its_start(tmp_path):
    make_dataset_folders(str(tmp_path / 'data'))
    val = make_validation_set(str(tmp_path / 'val'))
    with open(os.path.join(val, 'testA', 'v1.png'), 'wb') as f:
        f.write(b'not an image')
    with pytest.raises(SystemExit) as exit_info:
        train_script.main(train_argv(tmp_path, '--val_dataroot', val))
    assert 'v1.png cannot be read' in str(exit_info.value) and '\n' not in str(exit_info.value)
    assert not os.path.exists(tmp_path / 'saves' / 'run' / 'latest_net_G_A.pth')


def test_validation_images_with_names_that_fill_the_file_system_limit(tmp_path):
    """A validation image named with 250 bytes (in two-byte letters) used to end the run at its first validation with
    "File name too long" (its samples are named val_epoch001_iter00000002_<stem>.png); the samples' names are cut,
    with a hash, and the page shows them."""
    make_dataset_folders(str(tmp_path / 'data'))
    val = tmp_path / 'val'
    long_name = 'é' * 123 + '.png'
    for folder, seed in (('testA', 1), ('testB', 2)):
        write_image(str(val / folder / long_name), (40, 36), seed=seed)
    argv = train_argv(tmp_path, '--val_dataroot', str(val), '--n_epochs_decay', '0')
    argv.remove('--no_html')
    assert train_script.main(argv) == 0
    shown = referenced_files_exist(str(tmp_path / 'saves' / 'run' / 'web' / 'index.html'))
    samples = [ref for ref in shown if ref.startswith('images/val_')]
    assert len(samples) == 2 and all('é' * 50 in ref and '~' in ref for ref in samples), samples


def test_a_validation_image_that_becomes_unreadable_stops_the_run_with_latest_saved(tmp_path, monkeypatch):
    """A validation image deleted while the run trains stops it, as unreadable training images do, with `latest`
    saved first (a Ctrl-C would have saved it); --continue_train then finishes the run."""
    make_dataset_folders(str(tmp_path / 'data'))
    val = make_validation_set(str(tmp_path / 'val'), n=1, size=(40, 36))
    image = os.path.join(val, 'testA', 'v0.png')
    kept, validate = open(image, 'rb').read(), Validator.__call__

    def deleted_after_the_first(validator, *args):
        if validator.last is not None:
            os.remove(image)
        return validate(validator, *args)

    monkeypatch.setattr(Validator, '__call__', deleted_after_the_first)
    argv = train_argv(tmp_path, '--val_dataroot', val, '--val_freq_iters', '1', '--save_latest_freq', '1000')
    with pytest.raises(SystemExit) as exit_info:
        train_script.main(argv)
    folder = tmp_path / 'saves' / 'run'
    assert 'v0.png cannot be read' in str(exit_info.value) and '\n' not in str(exit_info.value)
    assert 'saved %s/latest_* at epoch 1, image 2 first' % folder in str(exit_info.value)
    state = torch.load(folder / 'latest_train_state.pth', weights_only=True)
    assert state['counters']['total_iters'] == 2
    monkeypatch.undo()
    with open(image, 'wb') as f:
        f.write(kept)
    assert train_script.main(argv + ['--continue_train']) == 0


@pytest.mark.parametrize('metric, values, ground_truth', [('niqe', [5.0, 3.0, 4.0], False),
                                                          ('psnr', [10.0, 12.0, 11.0], True)])
def test_the_best_checkpoint_is_the_best_validation_not_the_last(tmp_path, monkeypatch, metric, values, ground_truth):
    """Three validations whose second is best by construction (a scorer the test controls): NIQE, lower is better,
    rises after its lowest value; PSNR falls after its highest. best.json and best_net_* keep the second."""
    scores = iter(values)
    monkeypatch.setattr(Validator, 'score', lambda self, output, path: {metric: next(scores)})
    make_dataset_folders(str(tmp_path / 'data'))
    val = make_validation_set(str(tmp_path / 'val'), ground_truth=ground_truth, n=1)
    argv = train_argv(tmp_path, '--val_dataroot', val, '--n_epochs', '3', '--n_epochs_decay', '0',
                      '--lr_step_after_epoch', '--save_epoch_freq', '1')
    assert train_script.main(argv) == 0
    folder = tmp_path / 'saves' / 'run'
    assert [float(row[metric]) for row in logged(str(folder))] == values
    best = json.loads((folder / 'best.json').read_text())
    assert (best['metric'], best['value'], best['epoch'], best['iteration']) == (metric, values[1], 2, 4)
    for name in ('G_A', 'Pre', 'H'):
        assert (folder / ('best_net_%s.pth' % name)).read_bytes() == (folder / ('2_net_%s.pth' % name)).read_bytes()


def test_val_max_and_val_metric_choose_the_images_and_what_best_follows(tmp_path, monkeypatch):
    """--val_max 2 of three images scores the first two by name; --val_metric lpips keeps the first validation as
    the best, though its PSNR is the worse one."""
    scored = []

    def score(self, output, path):
        scored.append(os.path.basename(path))
        first = len(scored) <= 2
        return {'psnr': 10.0 if first else 12.0, 'lpips': 0.5 if first else 0.6}

    monkeypatch.setattr(Validator, 'score', score)
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    fake_alexnet(str(tmp_path / 'hub'))
    make_dataset_folders(str(tmp_path / 'data'))
    val = make_validation_set(str(tmp_path / 'val'), n=3)
    argv = train_argv(tmp_path, '--val_dataroot', val, '--val_max', '2', '--val_metric', 'lpips', '--n_epochs', '2',
                      '--n_epochs_decay', '0', '--lr_step_after_epoch')
    assert train_script.main(argv) == 0
    assert scored == ['v0.png', 'v1.png'] * 2
    folder = tmp_path / 'saves' / 'run'
    assert (folder / 'val_log.txt').read_text().count('over 2 image(s)') == 2
    best = json.loads((folder / 'best.json').read_text())
    assert (best['metric'], best['value'], best['epoch']) == ('lpips', 0.5, 1)


@pytest.mark.parametrize('metric, values', [('niqe', [10.0, 9.0]), ('psnr', [10.0, 11.0])])
def test_plateau_reduces_the_rate_only_once_the_validation_metric_stalls(tmp_path, monkeypatch, metric, values):
    """Validations after every image whose metric improves twice, then stalls: the rate holds while it improves
    and for patience (5) validations more, and falls at the sixth without improvement, for a lower-is-better and a
    higher-is-better metric. (PSNR used to be passed negated, and the schedule's relative threshold then counted a
    stall as an improvement: the rate never fell.)"""
    values = iter(values + values[-1:] * 20)
    monkeypatch.setattr(Validator, 'score', lambda self, output, path: {metric: next(values)})
    real_step, rates = NeRCoModel.optimize_parameters, []

    def record_the_rate(self):
        rates.append(self.optimizers[0].param_groups[0]['lr'] / self.opt.lr)
        return real_step(self)

    monkeypatch.setattr(NeRCoModel, 'optimize_parameters', record_the_rate)
    make_dataset_folders(str(tmp_path / 'data'), n=5)
    val = make_validation_set(str(tmp_path / 'val'), ground_truth=metric == 'psnr', n=1)
    argv = train_argv(tmp_path, '--val_dataroot', val, '--val_freq_iters', '1', '--lr_policy', 'plateau',
                      '--n_epochs', '2', '--n_epochs_decay', '0', '--val_metric', metric)
    assert train_script.main(argv) == 0
    assert rates == [1.0] * 8 + [0.2] * 2  # validations 1-2 improve, 3-8 do not: the 8th reduces the rate


def test_a_nan_metric_never_becomes_the_best():
    """A NaN score (a diverged run's black output) taken as the first best could never be replaced: NaN compares
    false with everything."""
    validator = Validator.__new__(Validator)  # the rule alone, without a data set
    for metric in ('psnr', 'niqe'):
        validator.metric, validator.best = metric, None
        assert not validator.improved(float('nan')) and validator.improved(12.0)
        validator.best = {'value': 12.0}
        assert not validator.improved(float('nan'))


def test_the_training_charts_group_the_losses_and_give_each_metric_its_own_axis():
    from training import charts
    names = ['D_A', 'G_A', 'cycle_A', 'idt_A', 'D_B', 'G_B', 'cycle_B', 'idt_B', 'D_A_edge', 'D_B_edge', 'D_A_CLIP',
             'D_B_CLIP', 'PreConsis', 'H']
    history = [(epoch, iters, {name: 1 / (epoch + iters) for name in names}) for epoch in (1, 2) for iters in (2, 4)]
    figure = charts.loss_figure(history)
    shown = {ax.get_title(): [line.get_label() for line in ax.get_lines()] for ax in figure.axes}
    assert shown == {'discriminators': ['D_A', 'D_B', 'D_A_edge', 'D_B_edge', 'D_A_CLIP', 'D_B_CLIP'],
                     'cycle, identity, consistency': ['cycle_A', 'idt_A', 'cycle_B', 'idt_B', 'PreConsis'],
                     'generators, mask extractor': ['G_A', 'G_B', 'H']}
    assert list(figure.axes[0].get_lines()[0].get_xdata()) == [0.5, 1.0, 1.5, 2.0]  # epochs, shares of them
    rows = [{'epoch': 1, 'iteration': 6, 'psnr': 11.6, 'ssim': 0.41, 'niqe': 7.2},
            {'epoch': 2, 'iteration': 12, 'psnr': 13.7, 'ssim': 0.52, 'niqe': 6.1},
            {'epoch': 3, 'iteration': 18, 'psnr': 12.9, 'ssim': 0.55, 'niqe': 6.0}]
    figure = charts.validation_figure(rows, {'metric': 'psnr', 'epoch': 2, 'iteration': 12, 'value': 13.7})
    assert [(ax.get_ylabel(), ax.get_yscale()) for ax in figure.axes] == [
        ('PSNR (dB)', 'linear'), ('SSIM (0 to 1)', 'linear'), ('NIQE (lower is better)', 'linear')]
    stars = [(list(line.get_xdata()), list(line.get_ydata()), line.get_label()) for ax in figure.axes
             for line in ax.get_lines() if line.get_marker() == '*']
    assert stars == [([12], [13.7], 'best (epoch 2)')] and figure.axes[0].get_lines()[0].get_ydata()[1] == 13.7
    figure = charts.validation_figure(rows, {'metric': 'psnr'})  # a hand-edited record: charted, not marked
    assert not [line for ax in figure.axes for line in ax.get_lines() if line.get_marker() == '*']


def test_validation_ground_truth_that_pairs_two_ways_is_refused(tmp_path):
    val = make_validation_set(str(tmp_path / 'val'), size=(40, 36))
    Image.open(os.path.join(val, 'testB', 'v1.png')).save(os.path.join(val, 'testB', 'v1.jpg'))
    opt = train_options(tmp_path, '--val_dataroot', val)
    with pytest.raises(UserError, match=r'^validation ground truth .*testB: v1\.jpg and v1\.png both pair with the '
                                        r'images named v1; keep the one that is meant$'):
        Validator(opt, str(tmp_path))
