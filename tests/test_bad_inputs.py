"""The bad inputs of the third reliability pass: each gives one line naming the file or flag, and loses nothing."""
import contextlib
import os
import shutil
import socket
import subprocess

import pytest
import torch

import test as test_script
import train as train_script
from conftest import build_model
from helpers import (TINY, load_script, make_dataset_folders, make_validation_set, referenced_files_exist,
                     refused, save_tiny_checkpoint, train_argv, write_image)
from models import checkpoints
from models.inference import Enhancer
from training.validation import Validator
from util.locks import FolderLock
from util.util import UserError
from options.test_options import TestOptions
from options.train_options import TrainOptions

enhance_script = load_script('scripts/enhance.py')
evaluate_script = load_script('scripts/evaluate.py')


def test_devices_that_are_not_here_are_named(tmp_path, capsys):
    folder = save_tiny_checkpoint(tmp_path)
    write_image(str(tmp_path / 'in' / 'p.png'))
    argv = [str(tmp_path / 'in'), '--checkpoints', folder, '--out', str(tmp_path / 'out'), '--device']
    missing = 'cuda:%d' % torch.cuda.device_count()
    assert refused(capsys, enhance_script.main, *argv, missing).startswith('error: --device %s: this machine has'
                                                                           % missing)
    assert refused(capsys, enhance_script.main, *argv, 'foo') == \
        'error: --device foo: not a device; use cpu, cuda, cuda:1 or mps'
    assert not (tmp_path / 'out').exists()


TRAIN_FLAGS = [
    (['--save_epoch_freq', '0'], '--save_epoch_freq 0: give a number of epochs, 1 or more'),
    (['--n_epochs_decay', '-1'], '--n_epochs and --n_epochs_decay must be 0 or more'),
    (['--lr_policy', 'step', '--lr_decay_iters', '0'], '--lr_decay_iters 0: --lr_policy step decays every'),
    (['--crop_size', '20', '--load_size', '20'], '--crop_size 20 is too small for the PatchGAN discriminators '
                                                 '(--netD basic): give 24 or more'),
    (['--netD', 'n_layers', '--n_layers_D', '4', '--crop_size', '44'],
     '--crop_size 44 is too small for the PatchGAN discriminators (--netD n_layers): give 48'),
    (['--suffix', '{nosuch}'], "--suffix {nosuch}: no option 'nosuch'"),
    (['--suffix', 'a{'], "--suffix a{: Single '{' encountered"),
    (['--max_dataset_size', 'nan'], '--max_dataset_size nan: give a number of images, 1 or more'),
    (['--num_threads', '-1'], '--num_threads -1: give 0'),
    (['--load_size', '100000'], '--load_size 100000: images are scaled to this size first (resize_and_crop); give '
                                'at most 16384'),
    (['--input_nc', '1', '--output_nc', '1'], '--input_nc 1: NeRCo reads and writes RGB images, so only 3 works'),
    (['--output_nc', '4', '--lambda_identity', '0'], '--output_nc 4: NeRCo reads and writes RGB images'),
]
TEST_FLAGS = [
    (['--aspect_ratio', '0'], '--aspect_ratio 0: give a positive factor'),
    (['--num_test', '0'], '--num_test 0: give a number of images, 1 or more'),
]


@pytest.mark.parametrize('options, argv, message', [(TrainOptions, *case) for case in TRAIN_FLAGS] +
                         [(TestOptions, *case) for case in TEST_FLAGS])
def test_flags_that_cannot_work_are_refused_at_parse_time(tmp_path, capsys, options, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        options().parse(['--dataroot', str(tmp_path), '--checkpoints_dir', str(tmp_path)] + argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].split('error: ', 1)[1].startswith(message)


def test_the_smallest_crop_trains(tmp_path):
    opt = TrainOptions().parse(['--dataroot', str(tmp_path), '--checkpoints_dir', str(tmp_path), '--ngf', '8',
                                '--ndf', '8', '--crop_size', '24', '--load_size', '24', '--gpu_ids', '-1',
                                '--clip_pretrained', 'none', '--display_id', '0'])
    model = build_model(opt)
    model.set_input({'A': torch.rand(1, 3, 24, 24) * 2 - 1, 'B': torch.rand(1, 3, 24, 24) * 2 - 1,
                     'A_paths': ['a'], 'B_paths': ['b']})
    model.optimize_parameters()
    assert all(torch.isfinite(getattr(model, 'loss_' + name)) for name in ('D_A', 'D_B_edge', 'G_A'))


def test_enhance_py_keeps_what_it_did_not_write_and_reads_its_arguments_as_meant(tmp_path, capsys, monkeypatch):
    folder = save_tiny_checkpoint(tmp_path)
    photos, out = tmp_path / 'photos', tmp_path / 'out'
    write_image(str(photos / 't0.png'))
    write_image(str(out / 't0.png'), seed=5)
    unrelated = (out / 't0.png').read_bytes()
    args = [str(photos / 't0.png'), '--checkpoints', folder, '--out', str(out)]
    assert refused(capsys, enhance_script.main, *args) == \
        'error: --out %s: %s exists (1 output(s) would replace files); give --overwrite to replace them, or ' \
        'choose another --out folder' % (out, out / 't0.png')
    assert (out / 't0.png').read_bytes() == unrelated
    assert enhance_script.main(args + ['--overwrite']) == 0 and (out / 't0.png').read_bytes() != unrelated
    capsys.readouterr()
    twice = [str(photos / 't0.png'), str(photos / '..' / 'photos'), '--checkpoints', folder, '--out',
             str(tmp_path / 'twice')]
    assert enhance_script.main(twice) == 0 and 'enhanced 1 image(s)' in capsys.readouterr().out
    assert refused(capsys, enhance_script.main, *args, '--overwrite', '--options', '--ngf', 'abc') == \
        "error: --options: argument --ngf: invalid int value: 'abc'"
    monkeypatch.chdir(photos)
    os.rename('t0.png', '-dash.png')
    assert refused(capsys, enhance_script.main, '-dash.png', '--checkpoints', folder, '--out', str(out)).endswith(
        ': error: -dash.png is a file, not a flag: write ./-dash.png, or put -- before it')
    by_file = [os.path.join(folder, 'latest_net_G_A.pth'), '--out', str(tmp_path / 'by_file')]
    assert enhance_script.main(['./-dash.png', '--checkpoints', *by_file]) == 0
    with open(os.path.join(folder, 'train_opt.json'), 'w') as f:
        f.write('{"ngf": 8,')
    assert refused(capsys, enhance_script.main, './-dash.png', '--checkpoints', folder, '--out',
                   str(tmp_path / 'o')).startswith('error: %s: not readable JSON (' % os.path.join(folder,
                                                                                                  'train_opt.json'))


@pytest.mark.parametrize('edit, message', [({'ngf': 8.5}, 'ngf 8.5 is not a whole number'),
                                           ({'ngf': True}, 'ngf true is not a whole number'),
                                           ({'no_dropout': 1}, 'no_dropout 1 is not True or False'),
                                           ({'no_dropout': 'yes'}, 'no_dropout "yes" is not True or False'),
                                           ({'ngf': '8'}, None)])  # train_opt.txt's text: read
def test_a_hand_edited_train_opt_json_is_read_strictly(tmp_path, edit, message):
    """A run's recorded architecture (load_enhancer, enhance.py): ngf 8.5 was read as 8 and no_dropout 1 as True,
    without a word; the values the JSON types or train_opt.txt's text give are read, others named."""
    import json
    from enhancer import load_enhancer
    folder = save_tiny_checkpoint(tmp_path)
    path = os.path.join(folder, 'train_opt.json')
    with open(path) as f:
        values = json.load(f)
    with open(path, 'w') as f:
        json.dump(dict(values, **edit), f)
    if message is None:
        load_enhancer(folder)
        return
    with pytest.raises(UserError) as error:
        load_enhancer(folder)
    assert str(error.value) == '%s: %s' % (path, message)


def test_evaluate_names_a_folder_it_could_not_score_and_keeps_pages_it_did_not_write(tmp_path, capsys):
    (tmp_path / 'broken').mkdir()
    (tmp_path / 'broken' / 'only.png').write_bytes(b'not a png')
    assert refused(capsys, evaluate_script.main, str(tmp_path / 'broken'), '--no_lpips') == \
        'error: %s: none of its 1 image(s) could be scored (e.g. %s is unreadable); fix or remove them' % (
            tmp_path / 'broken', tmp_path / 'broken' / 'only.png')
    assert os.listdir(tmp_path / 'broken') == ['only.png']
    for name in ('a', 'b'):
        write_image(str(tmp_path / name / 'x.png'), (20, 12))
    (tmp_path / 'a' / 'index.html').write_text('<html>test.py results</html>')
    assert refused(capsys, evaluate_script.main, str(tmp_path / 'a'), str(tmp_path / 'b'), '--no_lpips', '--out',
                   str(tmp_path / 'a')) == 'error: --out %s holds a page that no comparison wrote (%s); choose ' \
                                           'another --out folder' % (tmp_path / 'a', tmp_path / 'a' / 'index.html')
    assert (tmp_path / 'a' / 'index.html').read_text() == '<html>test.py results</html>'


def test_long_and_non_utf8_file_names_are_enhanced_and_shown(tmp_path, capsys):
    folder = save_tiny_checkpoint(tmp_path)
    long_name = 'n' * 236 + '.png'
    write_image(str(tmp_path / 'data' / 'testA' / long_name), (20, 12))
    write_image(str(tmp_path / 'data' / 'testA' / 'plain.png'), (20, 12))
    os.rename(tmp_path / 'data' / 'testA' / 'plain.png', os.path.join(os.fsencode(tmp_path / 'data' / 'testA'),
                                                                       b'caf\xe9.png'))
    test_script.main(['--dataroot', str(tmp_path / 'data'), '--name', 'tiny', '--checkpoints_dir',
                      str(tmp_path / 'saves'), '--results_dir', str(tmp_path / 'results'), '--gpu_ids', '-1',
                      '--ngf', '8', '--preprocess', 'none', '--num_threads', '0'])
    page = tmp_path / 'results' / 'tiny' / 'test_latest' / 'index.html'
    shown = referenced_files_exist(str(page))
    assert 'images/%s_fake_B.png' % long_name[:-4] in shown and len(shown) == 4
    assert 'caf\ufffd' in page.read_text(encoding='utf-8')
    assert enhance_script.main([str(tmp_path / 'data' / 'testA' / long_name), '--checkpoints', folder, '--out',
                                str(tmp_path / 'out')]) == 0
    assert os.listdir(tmp_path / 'out') == [long_name]


def test_out_of_cpu_memory_skips_the_image_and_goes_on(tmp_path, capsys, monkeypatch):
    folder = save_tiny_checkpoint(tmp_path)
    write_image(str(tmp_path / 'in' / 'big.png'), (40, 32))
    write_image(str(tmp_path / 'in' / 'small.png'), (20, 12))
    real = Enhancer.tensor

    def small_memory(self, real_A):
        if real_A.shape[-1] > 30:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you "
                               "tried to allocate 1099511627776 bytes. Error code 12 (Cannot allocate memory)")
        return real(self, real_A)

    monkeypatch.setattr(Enhancer, 'tensor', small_memory)
    line = refused(capsys, enhance_script.main, str(tmp_path / 'in'), '--checkpoints', folder, '--out',
                   str(tmp_path / 'out'))
    assert line == 'error: 1 image(s) could not be enhanced and were skipped'
    assert 'skipped %s: out of CPU memory at 40x32; try --options --tile 512' % (tmp_path / 'in' / 'big.png') in \
        capsys.readouterr().err
    assert os.listdir(tmp_path / 'out') == ['small.png']


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A finished tiny run validated with PSNR (best.json, best_net_*), and its data and validation set."""
    root = tmp_path_factory.mktemp('trained')
    make_dataset_folders(str(root / 'data'))
    val = make_validation_set(str(root / 'val'), size=(100, 36))
    assert train_script.main(train_argv(root, '--val_dataroot', val)) == 0
    return root


def copy_of(trained, tmp_path):
    shutil.copytree(trained, tmp_path, dirs_exist_ok=True)
    return tmp_path / 'saves' / 'run'


def test_continuing_with_another_validation_metric_or_set_is_refused_and_changes_nothing(trained, tmp_path):
    folder = copy_of(trained, tmp_path)
    options = (folder / 'train_opt.txt').read_text()
    best = folder / 'best.json'
    for extra, expected in ((['--val_metric', 'niqe'], 'the best checkpoint of this run was chosen by psnr on '
                             'these images'),
                            (['--val_dataroot', str(tmp_path / 'data')], '--val_metric psnr on --val_dataroot %s: '
                             'the best checkpoint of this run was chosen by psnr on other images (2: v0.png, v1.png)'
                             % (tmp_path / 'data'))):
        argv = train_argv(tmp_path, '--val_dataroot', str(tmp_path / 'val'), '--continue_train', '--n_epochs', '3',
                          *extra)
        if extra[0] == '--val_dataroot':
            make_validation_set(str(tmp_path / 'data'), size=(100, 36))
        with pytest.raises(SystemExit) as exit_info:
            train_script.main(argv)
        message = str(exit_info.value)
        assert expected in message and str(best) in message and '\n' not in message
        assert (folder / 'train_opt.txt').read_text() == options and not (folder / '.training.lock').exists()
    best.write_text('{"metric": "psnr", "value": ')
    with pytest.raises(SystemExit) as exit_info:
        train_script.main(train_argv(tmp_path, '--val_dataroot', str(tmp_path / 'val'), '--continue_train'))
    assert str(exit_info.value).startswith('error: %s: not readable JSON' % best)
    assert (folder / 'train_opt.txt').read_text() == options


def test_a_corrupt_checkpoint_manifest_is_named_and_the_lock_released(trained, tmp_path, capsys):
    folder = copy_of(trained, tmp_path)
    (folder / 'latest_checkpoint.json').write_text('{"files": ')
    with pytest.raises(SystemExit) as exit_info:
        train_script.main(train_argv(tmp_path, '--continue_train'))
    assert str(exit_info.value).startswith('error: %s: not readable JSON' % (folder / 'latest_checkpoint.json'))
    assert not (folder / '.training.lock').exists()
    line = refused(capsys, test_script.main, '--dataroot', str(tmp_path / 'data'), '--name', 'run',
                   '--checkpoints_dir', str(tmp_path / 'saves'), '--results_dir', str(tmp_path / 'results'), *TINY,
                   '--preprocess', 'none')
    assert line.startswith('error: %s: not readable JSON' % (folder / 'latest_checkpoint.json'))


def test_a_checkpoint_folder_that_turns_unwritable_keeps_the_previous_set(tmp_path, monkeypatch):
    make_dataset_folders(str(tmp_path / 'data'))
    folder = tmp_path / 'saves' / 'run'
    real_write, real_remove, saves = checkpoints.write_temporary, os.remove, []

    def unwritable_after_the_first_save(path, write):
        if os.path.basename(path) == 'latest_net_G_A.pth':
            saves.append(path)
        if len(saves) > 1:
            if 'previous' not in saves:
                saves.append('previous')
                globals()['previous'] = {n: (folder / n).read_bytes() for n in os.listdir(folder) if 'latest' in n}
            raise PermissionError(13, 'Permission denied', path)
        return real_write(path, write)

    def lock_cannot_be_removed(path):
        if path.endswith('.training.lock') and len(saves) > 1:
            raise PermissionError(13, 'Permission denied', path)
        real_remove(path)

    monkeypatch.setattr(checkpoints, 'write_temporary', unwritable_after_the_first_save)
    monkeypatch.setattr(os, 'remove', lock_cannot_be_removed)
    with pytest.raises(SystemExit) as exit_info:
        train_script.main(train_argv(tmp_path))
    assert str(exit_info.value) == 'error: %s: checkpoint latest could not be saved (Permission denied); the ' \
        'previous latest checkpoint is kept; make the folder writable and resume with --continue_train' % folder
    assert {n: (folder / n).read_bytes() for n in os.listdir(folder) if 'latest' in n} == globals().pop('previous')
    monkeypatch.setattr(os, 'remove', real_remove)
    monkeypatch.setattr(checkpoints, 'write_temporary', real_write)
    assert (folder / '.training.lock').read_text().startswith('%d@' % os.getpid())  # it could not be removed
    dead = subprocess.Popen(['true'])
    dead.wait()
    (folder / '.training.lock').write_text('%d@%s' % (dead.pid, socket.gethostname()))  # as that process ended
    assert train_script.main(train_argv(tmp_path, '--continue_train')) == 0  # the dead process's lock is taken


def test_a_lock_of_another_machine_is_never_taken_over(tmp_path):
    """On a shared file system a process id names a process of its own machine only: a lock written elsewhere is
    left alone, however dead that process id is here."""
    dead = subprocess.Popen(['true'])
    dead.wait()
    lock = tmp_path / '.training.lock'
    for host, taken in (('another-machine', False), (socket.gethostname(), True)):
        lock.write_text('%d@%s' % (dead.pid, host))
        if taken:
            with FolderLock(str(tmp_path), '.training.lock', 'training run', 'another --name'):
                assert lock.read_text().startswith('%d@' % os.getpid())
                umask = os.umask(0)
                os.umask(umask)
                assert lock.stat().st_mode & 0o777 == 0o644 & ~umask
            assert not lock.exists()
        else:
            with pytest.raises(UserError, match='in use by another training run'):
                FolderLock(str(tmp_path), '.training.lock', 'training run', 'another --name').acquire()
            assert lock.read_text() == '%d@another-machine' % dead.pid
    with FolderLock(str(tmp_path), '.training.lock', 'training run', 'another --name'):
        lock.unlink()  # deleted by hand while held: releasing it is no error
    holder = subprocess.Popen(['sleep', '60'])  # alive on this machine: refused, and left running
    try:
        lock.write_text('%d@%s' % (holder.pid, socket.gethostname()))
        with pytest.raises(UserError, match='process %d@' % holder.pid):
            FolderLock(str(tmp_path), '.training.lock', 'training run', 'another --name').acquire()
        assert holder.poll() is None and lock.read_text().startswith('%d@' % holder.pid)
    finally:
        holder.kill()
        holder.wait()


def test_a_results_folder_is_held_by_one_test_run(trained, tmp_path, capsys):
    copy_of(trained, tmp_path)
    results = tmp_path / 'results' / 'run' / 'test_latest'
    results.mkdir(parents=True)
    (results / '.results.lock').write_text('%d@%s' % (os.getpid(), socket.gethostname()))
    line = refused(capsys, test_script.main, '--dataroot', str(tmp_path / 'data'), '--name', 'run',
                   '--checkpoints_dir', str(tmp_path / 'saves'), '--results_dir', str(tmp_path / 'results'), *TINY,
                   '--preprocess', 'none')
    assert line == 'error: %s is in use by another test.py run (process %d@%s); wait for it or stop it, or choose ' \
        'another --results_dir (if that run is gone, delete %s)' % (results, os.getpid(), socket.gethostname(),
                                                                    results / '.results.lock')
    assert os.listdir(results) == ['.results.lock']


def test_a_validation_set_too_small_for_niqe_is_warned_about_at_start(tmp_path, capsys):
    val = make_validation_set(str(tmp_path / 'val'), ground_truth=False, size=(100, 36))
    opt = TrainOptions().parse(['--dataroot', str(tmp_path), '--checkpoints_dir', str(tmp_path), '--val_dataroot',
                                val, '--gpu_ids', '-1'])
    Validator(opt, str(tmp_path))
    assert 'no image has two 96x96 blocks, which NIQE needs, so no best checkpoint can be chosen' in \
        capsys.readouterr().err
    make_validation_set(val, ground_truth=False, n=1, size=(200, 100))  # one image with two blocks is enough
    Validator(opt, str(tmp_path))
    assert 'NIQE needs' not in capsys.readouterr().err


def test_a_full_disk_is_one_line_naming_the_folder(tmp_path, monkeypatch, capsys):
    """enhance.py, test.py, evaluate.py and export.py writing to a full disk: one line naming the folder they write in
    and why, not an OSError or SafetensorError traceback; no half-written export is left at --out."""
    import errno
    import safetensors
    import safetensors.torch
    folder = save_tiny_checkpoint(tmp_path)
    write_image(str(tmp_path / 'data' / 'testA' / 'a.png'), (24, 20))
    write_image(str(tmp_path / 'truth' / 'a.png'), (24, 20))

    def full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    safetensors_messages = iter([  # as safetensors versions word it
        'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })',
        'Error while serializing: I/O error: No space left on device (os error 28)'])

    def full_safetensors(*args, **kwargs):
        raise safetensors.SafetensorError(next(safetensors_messages))

    monkeypatch.setattr(os, 'fsync', full)
    monkeypatch.setattr(safetensors.torch, 'save_file', full_safetensors)
    out = tmp_path / 'out'
    commands = {
        'enhance.py': (enhance_script.main, [str(tmp_path / 'data' / 'testA'), '--checkpoints', folder, '--out',
                                             str(out)], str(out)),
        'test.py': (test_script.main, ['--dataroot', str(tmp_path / 'data'), '--name', 'tiny', '--checkpoints_dir',
                                       str(tmp_path / 'saves'), '--results_dir', str(tmp_path / 'results'), *TINY,
                                       '--preprocess', 'none'], str(tmp_path / 'results' / 'tiny' / 'test_latest')),
        'evaluate.py': (evaluate_script.main, [str(tmp_path / 'data' / 'testA'), '--gt', str(tmp_path / 'truth'),
                                               '--no_lpips', '--no_niqe'], str(tmp_path / 'data' / 'testA')),
        'export.py': (load_script('scripts/export.py').main, ['--checkpoints', folder, '--format', 'safetensors',
                                                              '--out', str(tmp_path / 'hub')],
                      '--out %s: cannot be written in %s' % (tmp_path / 'hub', tmp_path)),
    }
    commands['export.py, the other wording'] = commands['export.py']
    for name, (main, argv, where) in commands.items():
        line = refused(capsys, main, *argv)
        assert where in line and "No space left on device" in line, (name, line)
    assert not os.path.exists(tmp_path / 'hub') and not [n for n in os.listdir(tmp_path) if n.startswith('.')]


def test_sigterm_ends_a_command_as_ctrl_c_does_and_leaves_no_temporary_files(tmp_path, monkeypatch, capsys):
    """SIGTERM (a service manager, `timeout`) or SIGHUP (a closed terminal) used to kill test.py --tile and export.py
    at once, leaving nerco_tile_* in TMPDIR and .export-* beside --out; now it interrupts them as Ctrl-C does:
    their temporary files are removed, one line, status 130."""
    import signal
    import tempfile
    from models import deployment
    folder = save_tiny_checkpoint(tmp_path)
    write_image(str(tmp_path / 'data' / 'testA' / 'a.png'), (40, 36))
    monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path / 'tmp'))
    os.makedirs(tmp_path / 'tmp')
    started = []

    def signalled(real, stop):
        def run(*args, **kwargs):
            started.append(os.listdir(tmp_path / 'tmp') + os.listdir(tmp_path))
            os.kill(os.getpid(), stop)
            return real(*args, **kwargs)
        return run

    from models import out_of_core
    commands = [(test_script.main, ['--dataroot', str(tmp_path / 'data'), '--name', 'tiny', '--checkpoints_dir',
                                    str(tmp_path / 'saves'), '--results_dir', str(tmp_path / 'results'), *TINY,
                                    '--preprocess', 'none', '--tile', '16'], out_of_core.Engine, 'conv'),
                (load_script('scripts/export.py').main, ['--checkpoints', folder, '--format', 'safetensors', '--out',
                                                         str(tmp_path / 'hub')], deployment.NeRCo, 'save_pretrained')]
    def not_handled(signum, frame):  # what the test process does where a command would not handle the signal
        raise AssertionError('signal %d was not handled by the command' % signum)

    for stop in (signal.SIGTERM, signal.SIGHUP):
        previous = signal.signal(stop, not_handled)
        for main, argv, owner, method in commands:
            started.clear()
            monkeypatch.setattr(owner, method, signalled(getattr(owner, method), stop))
            with pytest.raises(SystemExit) as exit_info:
                main(argv)
            monkeypatch.undo()
            monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path / 'tmp'))
            assert exit_info.value.code == 130 and capsys.readouterr().err.endswith('error: interrupted\n'), stop
            assert started and not os.listdir(tmp_path / 'tmp'), (stop, started)
            assert main is not test_script.main or any(name.startswith('nerco_tile_') for name in started[0])
            assert not os.path.exists(tmp_path / 'hub') and not [n for n in os.listdir(tmp_path) if n.startswith('.')]
        assert signal.signal(stop, previous) is not_handled  # the command put back the handler it found


def test_demo_data_never_mixes_into_a_real_data_set(tmp_path, capsys):
    """make_demo_data.py --out ./dataset over a real data set used to add its demo images to trainA/trainB/test*,
    which training would then use with the real ones; it is refused, naming an image; its own output is remade."""
    main = load_script('scripts/make_demo_data.py').main
    write_image(str(tmp_path / 'dataset' / 'trainB' / 'mine.jpg'))
    line = refused(capsys, main, '--out', str(tmp_path / 'dataset'), '--max_side', '16')
    assert line == 'error: --out %s: %s holds other images (mine.jpg); choose a new or empty --out for the demo data' \
        % (tmp_path / 'dataset', tmp_path / 'dataset' / 'trainB')
    assert [name for _, _, names in os.walk(tmp_path / 'dataset') for name in names] == ['mine.jpg']
    for _ in range(2):  # a second run over its own output (make demo again)
        main(['--out', str(tmp_path / 'demo'), '--max_side', '16'])
    assert sorted(os.listdir(tmp_path / 'demo' / 'testA')) == ['coffee.png', 'rocket.png']


def test_dataset_scripts_on_a_full_disk_leave_no_partial_image(tmp_path, monkeypatch, capsys):
    """make_demo_data.py and prepare_dataset.py --copy running out of space part-way through an image: one line
    naming the folder or file, and no half-written image that training would meet as a corrupt one; the same
    prepare_dataset.py command works once there is room."""
    import errno
    from PIL import Image
    from helpers import make_pairs

    def half_then_full(write):
        def fake(source, destination, *args, **kwargs):
            if not os.path.exists(tmp_path / 'room'):
                with open(destination, 'wb') if isinstance(destination, (str, os.PathLike)) else \
                        contextlib.nullcontext(destination) as f:
                    f.write(b'\x89PNG\r\n')
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return write(source, destination, *args, **kwargs)
        return fake

    lol = str(tmp_path / 'LOL')
    make_pairs(lol, ['our485', 'eval15'], ['1.png', '2.png'])
    monkeypatch.setattr(Image.Image, 'save', half_then_full(Image.Image.save))
    demo = tmp_path / 'demo'
    line = refused(capsys, load_script('scripts/make_demo_data.py').main, '--out', str(demo), '--max_side', '16')
    assert 'cannot write in %s' % (demo / 'trainA') in line and 'No space left on device' in line, line
    assert not [name for _, _, names in os.walk(demo) for name in names]

    copies = iter(range(100))
    copy2 = shutil.copy2
    monkeypatch.setattr(shutil, 'copy2', lambda source, destination: (copy2 if next(copies) < 3 else half_then_full(
        copy2))(source, destination))
    prepare = load_script('scripts/prepare_dataset.py').main
    line = refused(capsys, prepare, '--lol', lol, '--out', str(tmp_path / 'data'), '--copy')
    assert line.startswith('error: --out %s: cannot write %s' % (tmp_path / 'data', tmp_path / 'data')), line
    assert not [name for _, _, names in os.walk(tmp_path / 'data') for name in names]
    (tmp_path / 'room').mkdir()
    assert prepare(['--lol', lol, '--out', str(tmp_path / 'data'), '--copy']) == 0
