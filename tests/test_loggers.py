"""train.py --tensorboard and --wandb: the curves of loss_log.txt, the validation metrics and the visuals, read
back with TensorBoard's EventAccumulator and from the W&B offline run's file; resuming never writes a step twice;
a logger that cannot start is one line, one that fails during the run is one warning."""
import glob
import os
import struct
import subprocess
import sys

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from wandb.proto import wandb_internal_pb2

import train as train_script
from conftest import ROOT
from helpers import make_dataset_folders, make_validation_set, one_line_error, referenced_files_exist, train_argv
from models.NeRCo_model import NeRCoModel
from training import loggers
from training.visualizer import read_loss_log

IMAGES = 3  # per epoch, batch 1: the x axis (images seen) of a loss_log.txt line is (epoch - 1) * 3 + iters
VISUALS = ('real_A', 'pre_A', 'fake_B', 'rec_A', 'real_B', 'fake_A', 'rec_B')


def logged_run_argv(tmp_path, *extra):
    make_dataset_folders(str(tmp_path / 'data'), n=IMAGES)
    return train_argv(tmp_path, '--tensorboard', '--display_freq', '2', *extra)


def events(run_folder):
    accumulator = EventAccumulator(os.path.join(run_folder, 'tensorboard'), size_guidance={'scalars': 0, 'images': 0})
    accumulator.Reload()
    return accumulator


def wandb_history(run_folder):
    """The history rows ({key: value}) of the W&B offline run in run_folder, read from its .wandb file (a LevelDB
    log of protobuf records: 32 KiB blocks, a 7-byte header per chunk, after a 7-byte file header)."""
    path, = glob.glob(os.path.join(run_folder, 'wandb', 'offline-run-*', 'run-*.wandb'))
    with open(path, 'rb') as f:
        data = f.read()
    rows, pos, pending = [], 7, b''
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:
            pos += 32768 - pos % 32768
            continue
        _, length, kind = struct.unpack('<IHB', data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            if record.WhichOneof('record_type') == 'history':
                rows.append({item.key or '/'.join(item.nested_key): item.value_json for item in record.history.item})
    return rows


@pytest.fixture(scope='module')
def logged_run(tmp_path_factory):
    """A tiny run of two epochs with --tensorboard, --wandb (offline) and validation."""
    tmp_path = tmp_path_factory.mktemp('logged')
    argv = logged_run_argv(tmp_path, '--wandb', 'nerco-test', '--val_dataroot',
                           make_validation_set(str(tmp_path / 'val'), n=1))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('WANDB_MODE', 'offline')
        assert train_script.main(argv) == 0
    return str(tmp_path / 'saves' / 'run')


def test_tensorboard_holds_every_loss_of_the_loss_log_at_its_step(logged_run):
    accumulator = events(logged_run)
    rows = read_loss_log(os.path.join(logged_run, 'loss_log.txt'))
    assert len(rows) == 2 * IMAGES
    for epoch, iters, losses in rows:
        for name, value in losses.items():
            logged = {e.step: e.value for e in accumulator.Scalars('loss/' + name)}
            assert logged[(epoch - 1) * IMAGES + iters] == pytest.approx(value, abs=5e-4), name
    assert {'lr/G', 'lr/D', 'speed/iterations_per_second'} <= set(accumulator.Tags()['scalars'])


def test_tensorboard_holds_validation_metrics_visuals_and_options(logged_run):
    accumulator = events(logged_run)
    with open(os.path.join(logged_run, 'val_metrics.csv')) as f:
        assert f.readline().startswith('epoch,iteration,psnr,ssim')
    assert [e.step for e in accumulator.Scalars('val/psnr')] == [IMAGES, 2 * IMAGES]
    assert {'val/ssim', 'val/niqe', 'best/psnr'} <= set(accumulator.Tags()['scalars'])
    best = max(accumulator.Scalars('val/psnr'), key=lambda e: e.value)  # the first of equals, as the best is kept
    assert [(e.step, e.value) for e in accumulator.Scalars('best/psnr')] == [(best.step, pytest.approx(best.value))]
    for name in VISUALS:
        assert accumulator.Images('visuals/' + name), name
    assert 'options/text_summary' in accumulator.Tags()['tensors']


def test_the_wandb_offline_run_holds_the_same_scalars(logged_run):
    rows = [row for row in wandb_history(logged_run) if 'loss/G_A' in row]
    accumulator = events(logged_run)
    assert len(rows) == 2 * IMAGES
    for row in rows:
        step = int(row['_step'])
        for tag in ('loss/G_A', 'loss/cycle_A', 'lr/G'):
            assert float(row[tag]) == pytest.approx({e.step: e.value for e in accumulator.Scalars(tag)}[step])
    assert any('val/psnr' in row for row in wandb_history(logged_run))


def test_resuming_after_a_crash_writes_no_step_twice(tmp_path, monkeypatch):
    """The latest checkpoint is at 2 images, the crash comes in the 4th step, after the 3rd was logged: the resumed
    run logs from 3 again, and what the crashed run wrote from there is purged."""
    real_step, calls = NeRCoModel.optimize_parameters, []

    def crash_in_the_fourth_step(self):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError('simulated crash')
        return real_step(self)

    monkeypatch.setattr(NeRCoModel, 'optimize_parameters', crash_in_the_fourth_step)
    argv = logged_run_argv(tmp_path, '--save_latest_freq', '2')
    with pytest.raises(RuntimeError, match='simulated crash'):
        train_script.main(argv)
    monkeypatch.setattr(NeRCoModel, 'optimize_parameters', real_step)
    assert train_script.main(argv + ['--continue_train']) == 0
    accumulator = events(str(tmp_path / 'saves' / 'run'))
    for tag in accumulator.Tags()['scalars']:
        steps = [e.step for e in accumulator.Scalars(tag)]
        assert steps == sorted(set(steps)), tag
    assert [e.step for e in accumulator.Scalars('loss/G_A')] == list(range(1, 2 * IMAGES + 1))


def test_without_wandb_installed_or_logged_in_it_is_one_line(tmp_path):
    argv = logged_run_argv(tmp_path, '--wandb', 'nerco-test')
    script = "import sys; sys.modules['wandb'] = None; sys.path.insert(0, %r); import train; train.main(%r)"
    missing = subprocess.run([sys.executable, '-c', script % (ROOT, argv)], capture_output=True, text=True,
                             timeout=300)
    assert one_line_error(missing) == 'error: --wandb nerco-test: Weights & Biases is not installed; pip install wandb'
    env = {k: v for k, v in os.environ.items() if not k.startswith('WANDB_')}
    env['HOME'] = str(tmp_path)  # no ~/.netrc
    offline = subprocess.run([sys.executable, 'train.py', *argv], cwd=ROOT, capture_output=True, text=True,
                             timeout=300, env=env, stdin=subprocess.DEVNULL)
    assert 'not logged in to Weights & Biases; run `wandb login`' in one_line_error(offline)
    assert not os.path.exists(tmp_path / 'saves' / 'run' / 'train_opt.txt')


def test_an_unwritable_log_folder_is_refused_at_start(tmp_path):
    folder = tmp_path / 'saves' / 'run'
    folder.mkdir(parents=True)
    (folder / 'tensorboard').write_text('a file where the log folder would be')
    with pytest.raises(SystemExit) as exit:
        train_script.main(logged_run_argv(tmp_path))
    assert str(exit.value.code).startswith('error: --tensorboard (%s) is not writable' % (folder / 'tensorboard'))
    assert not os.path.exists(folder / 'train_opt.txt') and not os.path.exists(folder / 'latest_net_G_A.pth')


def test_a_logger_failing_during_the_run_warns_once_and_training_goes_on(tmp_path, monkeypatch, capsys):
    def full_disk(self, values, step):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(loggers.TensorBoard, 'scalars', full_disk)
    assert train_script.main(logged_run_argv(tmp_path)) == 0
    err = capsys.readouterr().err
    assert err.count('warning: TensorBoard logging failed (OSError: [Errno 28] No space left on device); training '
                     'goes on without it') == 1
    assert os.path.isfile(tmp_path / 'saves' / 'run' / 'latest_net_G_A.pth')


def test_the_training_page_folder_deleted_during_the_run_is_made_again(tmp_path, monkeypatch, capsys):
    """Deleting <run>/web/ while training used to end the run with a traceback at the next saved result (and
    nothing saved since the last checkpoint); the folder is made again, with a warning, and the page goes on."""
    import shutil
    from training.visualizer import Visualizer
    display, calls = Visualizer.display_current_results, []

    def deleting_the_page(visualizer, *args, **kwargs):
        calls.append(args[2])
        if len(calls) == 2:
            shutil.rmtree(visualizer.web_dir)
        return display(visualizer, *args, **kwargs)

    monkeypatch.setattr(Visualizer, 'display_current_results', deleting_the_page)
    argv = train_argv(tmp_path, '--display_freq', '1', '--update_html_freq', '1')
    argv.remove('--no_html')
    make_dataset_folders(str(tmp_path / 'data'))
    assert train_script.main(argv) == 0
    web = tmp_path / 'saves' / 'run' / 'web'
    assert "The training page's folder %s was deleted during the run; made it again" % (web / 'images') in \
        capsys.readouterr().err
    shown = referenced_files_exist(str(web / 'index.html'))
    assert len(calls) == 4 and 'images/epoch002_iter00000004_fake_B.png' in shown
    assert 'images/epoch001_iter00000001_fake_B.png' not in shown


def test_a_tensorboard_folder_deleted_during_the_run_is_made_again(tmp_path, monkeypatch, capsys):
    """Deleting <run>/tensorboard/ while training used to kill the event writer's thread with a traceback, and
    nothing more was logged; the folder is made again, with a warning, and the curves go on."""
    import shutil
    import threading
    crashed = []
    monkeypatch.setattr(threading, 'excepthook', crashed.append)
    folder = str(tmp_path / 'tensorboard')
    board = loggers.TensorBoard(folder, None)
    board.scalars({'loss/G_A': 1.0}, 1)
    board.writer.flush()
    shutil.rmtree(folder)
    board.scalars({'loss/G_A': 2.0}, 2)
    board.close()
    assert not crashed and 'was deleted during the run; made it again' in capsys.readouterr().err
    events = EventAccumulator(folder)
    events.Reload()
    assert [event.step for event in events.Scalars('loss/G_A')] == [2]
