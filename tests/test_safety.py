"""Nothing lost, nothing run from a file: inputs and earlier runs are never overwritten, checkpoint labels are
written as sets, checkpoints cannot run code, and what is written can be read by others."""
import os
import shutil
import signal
import stat
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import train as train_script
from conftest import ROOT, build_model, train_options
from enhancer import load_enhancer
from helpers import (TINY, load_script, make_dataset_folders, make_pairs, make_validation_set, one_line_error,
                     run_script, save_tiny_checkpoint, train_argv, umask, write_image)
from models import checkpoints
from models.NeRCo_model import NeRCoModel
from util import util
from util.util import UserError
from training.state import RunState, load_training_state, save_checkpoint


def test_enhance_py_never_writes_over_an_input(tmp_path):
    photo = tmp_path / 'photos' / 'photo.png'
    write_image(str(photo), (20, 12))
    before = photo.read_bytes()
    line = one_line_error(run_script('scripts/enhance.py', str(photo), '--checkpoints', str(tmp_path), '--out',
                                     str(photo.parent)))
    assert 'would replace an input image' in line and str(photo) in line
    assert photo.read_bytes() == before
    relative = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'enhance.py'), 'photo.png',
                               '--checkpoints', str(tmp_path), '--out', '.'], cwd=photo.parent, capture_output=True,
                              text=True, timeout=300)  # the documented case: relative paths, from the photo's folder
    assert one_line_error(relative) == ('error: --out .: the output ./photo.png would replace an input image; choose '
                                        'another --out folder')
    assert photo.read_bytes() == before


def test_enhance_py_never_writes_over_an_input_even_with_overwrite(tmp_path, monkeypatch):
    """--overwrite replaces earlier outputs, never an input: however --out names the input's folder (relative, with
    '..', through a link)."""
    photo = tmp_path / 'photos' / 'photo.png'
    write_image(str(photo), (20, 12))
    (tmp_path / 'link').symlink_to(photo.parent)
    monkeypatch.chdir(photo.parent)
    plan = load_script('scripts/enhance.py').plan
    for inputs, out in ((['photo.png'], '.'), (['photo.png'], '../photos'), ([str(photo)], str(tmp_path / 'link')),
                        ([str(tmp_path / 'link' / 'photo.png')], '.'), (['.'], '')):
        with pytest.raises(UserError, match='would replace an input image'):
            plan(inputs, out, overwrite=True)
    assert plan(['photo.png'], 'enhanced', overwrite=True) == {os.path.join('enhanced', 'photo.png'): 'photo.png'}


def test_test_py_gives_every_input_its_own_output(tmp_path):
    data = tmp_path / 'data'
    for i, name in enumerate(('x.jpg', 'x.png', os.path.join('sub', 'x.png'), 'y.png')):
        write_image(str(data / 'testA' / name), (20, 16), seed=i, **({'quality': 95} if name.endswith('jpg') else {}))
    save_tiny_checkpoint(tmp_path)
    result = run_script('test.py', '--dataroot', str(data), '--name', 'tiny', '--checkpoints_dir',
                        str(tmp_path / 'saves'), '--results_dir', str(tmp_path / 'results'), *TINY, '--preprocess',
                        'none')
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'enhanced 4 image(s)' in result.stdout
    images = tmp_path / 'results' / 'tiny' / 'test_latest' / 'images'
    names = ('x_jpg', 'x_png', 'sub_x_png', 'y')
    inputs = [np.asarray(Image.open(images / ('%s_real_A.png' % name))) for name in names]
    assert all(not np.array_equal(inputs[i], inputs[j]) for i in range(4) for j in range(i))
    for name, source in zip(names, ('x.jpg', 'x.png', os.path.join('sub', 'x.png'), 'y.png')):
        assert np.array_equal(np.asarray(Image.open(images / ('%s_real_A.png' % name))),
                              np.asarray(Image.open(data / 'testA' / source).convert('RGB')))
    page = (images.parent / 'index.html').read_text()
    assert all(page.count('images/%s_fake_B.png' % name) == 2 for name in names)  # the image and its link


def test_test_py_enhances_files_whose_names_fill_the_file_system_limit(tmp_path):
    """A 251-byte name (255 with .png) cannot take the _fake_B.png suffix: its outputs get a shortened name with a
    hash, unique also beside another long name that shares its first 235 bytes, and the images after it are still
    enhanced; the same for multi-byte letters."""
    data = tmp_path / 'data'
    long_names = ['a' * 251 + '.png', 'a' * 250 + 'b.png', '\u00e9' * 125 + '.png', 'z.png']
    for i, name in enumerate(long_names):
        write_image(str(data / 'testA' / name), (20, 16), seed=i)
    save_tiny_checkpoint(tmp_path)
    result = run_script('test.py', '--dataroot', str(data), '--name', 'tiny', '--checkpoints_dir',
                        str(tmp_path / 'saves'), '--results_dir', str(tmp_path / 'results'), *TINY, '--preprocess',
                        'none')
    assert result.returncode == 0, result.stderr[-2000:]
    images = sorted(os.listdir(tmp_path / 'results' / 'tiny' / 'test_latest' / 'images'))
    assert len(images) == 8 and 'z_fake_B.png' in images and max(len(os.fsencode(n)) for n in images) <= 255
    cut = [n for n in images if '~' in n]
    assert len(cut) == 6 and len({n.split('~')[1][:8] for n in cut}) == 3  # three names cut, each its own hash
    assert all(n.split('~')[0] in ('a' * 235, '\u00e9' * 117) for n in cut)  # at whole letters (UTF-8)


def test_test_py_metrics_score_only_this_runs_outputs(tmp_path):
    data = make_dataset_folders(str(tmp_path / 'data'), size=(200, 196))
    save_tiny_checkpoint(tmp_path)
    argv = ['--dataroot', data, '--name', 'tiny', '--checkpoints_dir', str(tmp_path / 'saves'), '--results_dir',
            str(tmp_path / 'results'), *TINY, '--preprocess', 'none', '--metrics']
    assert run_script('test.py', *argv).returncode == 0
    os.remove(os.path.join(data, 'testA', 'img1.png'))
    result = run_script('test.py', *argv)
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'mean over 1 image(s)' in result.stdout
    with open(tmp_path / 'results' / 'tiny' / 'test_latest' / 'metrics.csv') as f:
        assert [line.split(',')[0] for line in f.read().split()[1:]] == ['img0_fake_B.png', 'mean']


def test_test_py_writes_nothing_into_the_checkpoints_folder(tmp_path):
    data = make_dataset_folders(str(tmp_path / 'data'))
    folder = save_tiny_checkpoint(tmp_path)
    before = {name: os.stat(os.path.join(folder, name)).st_mtime_ns for name in os.listdir(folder)}
    result = run_script('test.py', '--dataroot', data, '--name', 'tiny', '--checkpoints_dir', str(tmp_path / 'saves'),
                        '--results_dir', str(tmp_path / 'results'), *TINY, '--preprocess', 'none')
    assert result.returncode == 0, result.stderr[-2000:]
    assert {name: os.stat(os.path.join(folder, name)).st_mtime_ns for name in os.listdir(folder)} == before
    assert os.path.isfile(tmp_path / 'results' / 'tiny' / 'test_latest' / 'test_opt.txt')


def test_files_get_the_mode_the_umask_gives(tmp_path):
    with umask(0o022):
        folder = save_tiny_checkpoint(tmp_path)
        data = make_dataset_folders(str(tmp_path / 'data'))
        result = run_script('test.py', '--dataroot', data, '--name', 'tiny', '--checkpoints_dir',
                            str(tmp_path / 'saves'), '--results_dir', str(tmp_path / 'results'), *TINY)
        assert result.returncode == 0, result.stderr[-2000:]
    results = tmp_path / 'results' / 'tiny' / 'test_latest'
    for path in (os.path.join(folder, 'latest_net_G_A.pth'), os.path.join(folder, 'train_opt.json'),
                 results / 'index.html', results / 'images' / 'img0_fake_B.png'):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644, path


def test_a_run_folder_is_held_by_one_run_and_never_silently_overwritten(tmp_path):
    make_dataset_folders(str(tmp_path / 'data'))
    folder = tmp_path / 'saves' / 'run'
    folder.mkdir(parents=True)
    (folder / '.training.lock').write_text('%d@%s' % (os.getpid(), os.uname().nodename))  # a live process
    with pytest.raises(SystemExit) as exit_info:
        train_script.main(train_argv(tmp_path))
    assert 'is in use by another training run (process %d@' % os.getpid() in str(exit_info.value)
    dead = subprocess.Popen(['true'])
    dead.wait()
    (folder / '.training.lock').write_text('%d@%s' % (dead.pid, os.uname().nodename))  # a run that was killed
    assert train_script.main(train_argv(tmp_path)) == 0
    assert not (folder / '.training.lock').exists()
    before = (folder / 'latest_net_G_A.pth').read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        train_script.main(train_argv(tmp_path))
    message = str(exit_info.value)
    assert 'holds the checkpoints of an earlier run (latest)' in message and '--continue_train' in message
    assert (folder / 'latest_net_G_A.pth').read_bytes() == before
    assert train_script.main(train_argv(tmp_path, '--overwrite', '--seed', '8')) == 0
    assert (folder / 'latest_net_G_A.pth').read_bytes() != before


def test_overwrite_leaves_no_checkpoint_of_the_earlier_run(tmp_path, capsys):
    """--overwrite used to keep the earlier run's other checkpoint sets: its best_* (and best.json) and its epoch
    sets, which test.py --epoch best / --epoch 2 then served as this run's. They are removed when the new run
    starts, and a note names them; a refused --overwrite run removes nothing."""
    make_dataset_folders(str(tmp_path / 'data'))
    val = make_validation_set(str(tmp_path / 'val'), n=1, size=(40, 36))
    assert train_script.main(train_argv(tmp_path, '--val_dataroot', val, '--save_epoch_freq', '1')) == 0
    folder = tmp_path / 'saves' / 'run'
    assert checkpoints.available_labels(str(folder), ['G_A']) == ['1', '2', 'best', 'latest']
    with pytest.raises(SystemExit):  # refused after the folder is taken: nothing removed
        train_script.main(train_argv(tmp_path, '--overwrite', '--val_dataroot', str(tmp_path / 'missing')))
    assert checkpoints.available_labels(str(folder), ['G_A']) == ['1', '2', 'best', 'latest']
    capsys.readouterr()
    (folder / 'my_net_backup.pth').write_bytes(b'mine')  # not a checkpoint set's file: kept
    assert train_script.main(train_argv(tmp_path, '--overwrite', '--n_epochs_decay', '0')) == 0
    assert "note: --overwrite: removed the earlier run's checkpoints (1, 2, best, latest) from %s" % folder in \
        capsys.readouterr().err
    assert checkpoints.available_labels(str(folder), ['G_A']) == ['latest']
    assert not os.path.exists(folder / 'best.json') and not os.path.exists(folder / '2_train_state.pth')
    assert (folder / 'my_net_backup.pth').read_bytes() == b'mine'


def test_a_refused_continue_train_leaves_the_options_as_they_were(tmp_path):
    make_dataset_folders(str(tmp_path / 'data'))
    assert train_script.main(train_argv(tmp_path)) == 0
    folder = tmp_path / 'saves' / 'run'
    saved = {name: (folder / name).read_bytes() for name in ('train_opt.txt', 'train_opt.json')}
    with pytest.raises(SystemExit) as exit_info:
        train_script.main(train_argv(tmp_path, '--continue_train', '--ngf', '16'))
    assert 'check --netG, --ngf or --norm' in str(exit_info.value)
    assert {name: (folder / name).read_bytes() for name in saved} == saved


def test_sigterm_saves_and_stops_like_ctrl_c(tmp_path, monkeypatch):
    make_dataset_folders(str(tmp_path / 'data'))
    real_step, calls = NeRCoModel.optimize_parameters, []

    def step_then_sigterm(self):
        result = real_step(self)
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return result

    monkeypatch.setattr(NeRCoModel, 'optimize_parameters', step_then_sigterm)
    assert train_script.main(train_argv(tmp_path)) == 130
    state = torch.load(tmp_path / 'saves' / 'run' / 'latest_train_state.pth', weights_only=True)
    assert (state['counters']['epoch'], state['counters']['epoch_iter']) == (2, 1)


KILL_DURING_SAVE = """import os, signal, sys, warnings
sys.path.insert(0, {root!r})
sys.path.insert(0, os.path.join({root!r}, 'tests'))
import torch
from conftest import build_model, train_options
from training.state import RunState, save_checkpoint
model = build_model(train_options(__import__('pathlib').Path({tmp!r}), '--ngf', '8', '--ndf', '8', '--name', 'run'))
save_checkpoint(model, 'latest', RunState(epoch=1))
torch.save({{k: v.clone() for k, v in model.netPre.state_dict().items()}}, os.path.join({tmp!r}, 'old_Pre.pt'))
with torch.no_grad():
    for net in model.networks():
        for p in net.parameters():
            p.add_(1.0)
torch.save({{k: v.clone() for k, v in model.netPre.state_dict().items()}}, os.path.join({tmp!r}, 'new_Pre.pt'))
real_replace, renames = os.replace, []
def replace(src, dst):  # the commit is the manifest's replace; kill_at counts the file renames after it (0: the commit)
    if dst.endswith('_checkpoint.json'):
        renames.append(dst)
    elif renames:
        renames.append(dst)
    if renames and len(renames) == {kill_at} + 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst)
os.replace = replace
save_checkpoint(model, 'latest', RunState(epoch=2))
"""


@pytest.mark.parametrize('kill_at, survivor', [(0, 'old'), (2, 'new')], ids=['before-the-commit', 'after-it'])
def test_a_kill_while_saving_leaves_one_whole_set(tmp_path, kill_at, survivor):
    script = KILL_DURING_SAVE.format(root=ROOT, tmp=str(tmp_path), kill_at=kill_at)
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=300)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    folder = str(tmp_path / 'saves' / 'run')
    assert [name for name in os.listdir(folder) if name.endswith('.tmp')]  # what the kill left behind
    checkpoints.recover(folder)
    assert not [name for name in os.listdir(folder) if name.endswith('.tmp')]
    model = build_model(train_options(tmp_path, '--ngf', '8', '--ndf', '8', '--name', 'run'))
    model.load_networks('latest')
    assert load_training_state(model, 'latest').epoch == (1 if survivor == 'old' else 2)
    expected = torch.load(tmp_path / ('%s_Pre.pt' % survivor), weights_only=True)
    assert all(torch.equal(value, model.netPre.state_dict()[key]) for key, value in expected.items())


def test_a_mixed_checkpoint_set_is_refused(tmp_path):
    model = build_model(train_options(tmp_path, '--ngf', '8', '--ndf', '8', '--name', 'run'))
    save_checkpoint(model, 'latest', RunState(epoch=1))
    save_checkpoint(model, '5', RunState(epoch=5))
    folder = tmp_path / 'saves' / 'run'
    with torch.no_grad():
        model.netPre.model[1].weight.add_(1.0)
    torch.save(checkpoints.network_state(model.netPre), folder / 'latest_net_Pre.pth')  # written outside the set
    with pytest.raises(UserError, match=r'latest_net_Pre\.pth: not the file saved with the rest of checkpoint latest'):
        model.load_networks('latest')
    model.load_networks('5')
    shutil.copy(folder / '5_train_state.pth', folder / 'latest_train_state.pth')  # the training state of another save
    with pytest.raises(UserError, match=r'latest_train_state\.pth: not the file saved with the rest of checkpoint'):
        load_training_state(model, 'latest')
    assert load_training_state(model, '5').epoch == 5


def test_a_full_disk_while_saving_is_one_line_and_keeps_the_previous_set(tmp_path, monkeypatch):
    import errno
    model = build_model(train_options(tmp_path, '--ngf', '8', '--ndf', '8', '--name', 'run'))
    save_checkpoint(model, 'latest', RunState(epoch=1))
    folder = tmp_path / 'saves' / 'run'
    before = {name: (folder / name).read_bytes() for name in os.listdir(folder)}
    real_write, calls = checkpoints.write_temporary, []

    def write_until_full(path, write):
        calls.append(path)
        if len(calls) < 3:
            return real_write(path, write)

        def fill_up(f):  # the third file finds the disk full in the middle of torch.save, which wraps the OSError
            class Full:
                def write(self, data):
                    raise OSError(errno.ENOSPC, 'No space left on device')

                def flush(self):
                    pass
            write(Full())
        return real_write(path, fill_up)

    monkeypatch.setattr(checkpoints, 'write_temporary', write_until_full)
    with pytest.raises(UserError) as error:
        save_checkpoint(model, 'latest', RunState(epoch=2))
    message = str(error.value)
    assert message.startswith('%s: disk full while saving checkpoint latest (it needs ' % folder)
    assert 'the previous latest checkpoint is kept' in message and '\n' not in message
    assert {name: (folder / name).read_bytes() for name in os.listdir(folder)} == before


def test_a_training_state_cannot_run_code(tmp_path):
    make_dataset_folders(str(tmp_path / 'data'))
    assert train_script.main(train_argv(tmp_path)) == 0
    folder = tmp_path / 'saves' / 'run'
    marker = tmp_path / 'ran'

    class Payload:
        def __reduce__(self):
            return os.system, ('touch %s' % marker,)

    torch.save({'counters': Payload()}, folder / 'latest_train_state.pth')
    os.remove(folder / 'latest_checkpoint.json')  # as if the folder came from elsewhere
    line = one_line_error(run_script('train.py', *train_argv(tmp_path, '--continue_train')))
    assert 'latest_train_state.pth: cannot be read (UnpicklingError)' in line
    assert not marker.exists()


def test_a_training_state_of_another_architecture_is_refused(tmp_path):
    make_dataset_folders(str(tmp_path / 'data'))
    assert train_script.main(train_argv(tmp_path)) == 0
    assert train_script.main(train_argv(tmp_path, '--name', 'wide', '--ndf', '16')) == 0
    wide = tmp_path / 'saves' / 'wide'
    (wide / 'latest_train_state.pth').write_bytes((tmp_path / 'saves' / 'run' / 'latest_train_state.pth').read_bytes())
    os.remove(wide / 'latest_checkpoint.json')
    with pytest.raises(SystemExit) as exit_info:
        train_script.main(train_argv(tmp_path, '--name', 'wide', '--ndf', '16', '--continue_train'))
    assert 'latest_train_state.pth: the optimizer state does not fit these networks' in str(exit_info.value)


@pytest.mark.parametrize('preprocess, sizes, netG', [('none', [(3, 2), (40, 36)], 'resnet_9blocks'),
                                                     ('none', [(40, 36), (44, 36)], 'resnet_9blocks'),
                                                     ('scale_width', [(70, 50), (70, 50)], 'resnet_9blocks'),
                                                     ('none', [(64, 64), (64, 64)], 'unet_128')])
def test_uncropped_training_images_of_unusable_sizes_are_refused_at_start(tmp_path, preprocess, sizes, netG):
    """Sizes the generators cannot take: odd, tiny, mixed, or (U-Nets) not multiples of 128 / 256."""
    for i, size in enumerate(sizes):
        for folder in ('trainA', 'trainB'):
            write_image(str(tmp_path / 'data' / folder / ('img%d.png' % i)), size, seed=i)
    crop = '128' if netG == 'unet_128' else '32'  # a crop is checked even where it is not used
    argv = train_argv(tmp_path, '--preprocess', preprocess, '--load_size', '70', '--crop_size', crop, '--netG', netG)
    with pytest.raises(SystemExit) as exit_info:
        train_script.main(argv)
    message = str(exit_info.value)
    assert '--preprocess %s: without a crop every training image must come out at one size' % preprocess in message
    assert '\n' not in message


def test_epochs_at_learning_rate_zero_are_announced_and_cyclegan_order_avoids_them(tmp_path, capsys):
    make_dataset_folders(str(tmp_path / 'data'))
    argv = train_argv(tmp_path, '--n_epochs', '1', '--n_epochs_decay', '0')
    torch.manual_seed(0)
    assert train_script.main(argv) == 0
    assert 'epoch(s) 1 of this run train at learning rate 0' in capsys.readouterr().err
    official = torch.load(tmp_path / 'saves' / 'run' / 'latest_net_G_A.pth', weights_only=True)
    assert train_script.main(argv + ['--overwrite', '--lr_step_after_epoch']) == 0
    assert 'learning rate 0' not in capsys.readouterr().err
    cyclegan = torch.load(tmp_path / 'saves' / 'run' / 'latest_net_G_A.pth', weights_only=True)
    opt = train_options(tmp_path, '--ngf', '8', '--ndf', '8', '--seed', '7', '--name', 'initial')
    train_script.choose_seed(opt)
    initial = checkpoints.network_state(build_model(opt).netG_A)
    assert all(torch.equal(official[k], initial[k]) for k in initial)  # trained at rate 0 throughout
    assert not all(torch.equal(cyclegan[k], initial[k]) for k in initial)


def test_prepare_dataset_refuses_name_collisions_before_writing(tmp_path):
    from scripts.prepare_dataset import prepare
    root = str(tmp_path / 'cams')
    for split in ('train', 'Eval'):
        make_pairs(root, [os.path.join(split, 'a', 'Huawei'), os.path.join(split, 'b', 'Huawei')], ['1.png'])
    for copy in (False, True):
        out = tmp_path / ('out_copy' if copy else 'out')
        with pytest.raises(UserError, match='would both become'):
            prepare(root, str(out), 'lsrw', copy)
        assert not out.exists()


def test_test_py_batches_images_by_size(tmp_path):
    data = tmp_path / 'data'
    for name, size in (('a.png', (24, 20)), ('b.png', (30, 20)), ('c.png', (24, 20)), ('d.png', (30, 20))):
        write_image(str(data / 'testA' / name), size, seed=ord(name[0]))
    save_tiny_checkpoint(tmp_path)
    outputs = {}
    for batch in ('1', '2'):
        result = run_script('test.py', '--dataroot', str(data), '--name', 'tiny', '--checkpoints_dir',
                            str(tmp_path / 'saves'), '--results_dir', str(tmp_path / batch), *TINY, '--preprocess',
                            'none', '--batch_size', batch, '--num_threads', '1')
        assert result.returncode == 0, result.stderr[-2000:]
        assert 'enhanced 4 image(s)' in result.stdout
        images = tmp_path / batch / 'tiny' / 'test_latest' / 'images'
        outputs[batch] = {name: np.asarray(Image.open(images / ('%s_fake_B.png' % name)), dtype=int) for name in 'abcd'}
    for name in 'abcd':
        assert outputs['2'][name].shape == outputs['1'][name].shape
        assert np.abs(outputs['2'][name] - outputs['1'][name]).max() <= 1, name


@pytest.mark.parametrize('flags, rates', [([], [0.5, 0.5, 0, 0]), (['--lr_step_after_epoch'], [1, 1, 0.5, 0.5])],
                         ids=['official', 'cyclegan'])
def test_the_learning_rate_of_each_epoch_follows_the_order_of_the_schedule_steps(tmp_path, monkeypatch, flags,
                                                                                  rates):
    """Two epochs of two images, linear decay over the second: the official order steps the schedule at the start
    of each epoch, --lr_step_after_epoch at the end (as CycleGAN)."""
    real_step, seen = NeRCoModel.optimize_parameters, []

    def record_the_rate(self):
        seen.append(self.optimizers[0].param_groups[0]['lr'] / self.opt.lr)
        return real_step(self)

    monkeypatch.setattr(NeRCoModel, 'optimize_parameters', record_the_rate)
    make_dataset_folders(str(tmp_path / 'data'))
    assert train_script.main(train_argv(tmp_path, *flags)) == 0
    assert seen == pytest.approx(rates)


def test_a_network_file_cannot_run_code(tmp_path):
    """A crafted latest_net_G_A.pth (outside any checkpoint set) is refused by test.py and load_enhancer in one line,
    and its payload never runs: network files are read with weights_only=True too."""
    folder = save_tiny_checkpoint(tmp_path)
    marker = tmp_path / 'ran'

    class Payload:
        def __reduce__(self):
            return os.system, ('touch %s' % marker,)

    torch.save({'model.1.weight': Payload()}, os.path.join(folder, 'latest_net_G_A.pth'))
    os.remove(os.path.join(folder, 'latest_checkpoint.json'))  # as if the folder came from elsewhere
    data = make_dataset_folders(str(tmp_path / 'data'))
    line = one_line_error(run_script('test.py', '--dataroot', data, '--name', 'tiny', '--checkpoints_dir',
                                     str(tmp_path / 'saves'), *TINY, '--results_dir', str(tmp_path / 'results')))
    assert 'latest_net_G_A.pth: cannot be read (UnpicklingError)' in line
    with pytest.raises(UserError, match=r'latest_net_G_A\.pth: cannot be read \(UnpicklingError\)'):
        load_enhancer(folder)
    assert not marker.exists()


def test_an_atomic_write_reaches_the_disk_before_its_rename(tmp_path, monkeypatch):
    """Without fsync, a crash just after the rename can leave an empty file under the final name (a checkpoint,
    best.json): the data must be synced, whole, before the file takes its name."""
    synced, real_fsync = [], os.fsync

    def fsync(fd):
        synced.append((os.fstat(fd).st_size, os.path.exists(tmp_path / 'best.json')))
        real_fsync(fd)
    monkeypatch.setattr(os, 'fsync', fsync)
    util.atomic_write(str(tmp_path / 'best.json'), lambda f: f.write(b'x' * 1000))
    assert synced == [(1000, False)] and (tmp_path / 'best.json').read_bytes() == b'x' * 1000
