"""Bad input gets one clear line and loses nothing; interrupted runs resume exactly."""
import collections
import os
import pathlib
import shutil
import signal
import subprocess
import sys

import pytest
import torch

import train as train_script
from conftest import ROOT, build_model, train_options
from helpers import (TINY, load_script, make_dataset_folders, one_line_error, refused, run_script, train_argv,
                      write_image, write_official_checkpoints)
from data import create_dataset
from models.NeRCo_model import NeRCoModel
from util.util import UserError

def test_missing_trainB_is_named(tmp_path):
    make_dataset_folders(str(tmp_path / 'data'))
    os.rename(tmp_path / 'data' / 'trainB', tmp_path / 'data' / 'elsewhere')
    line = one_line_error(run_script('train.py', *train_argv(tmp_path)))
    assert line.startswith('error: ') and 'trainB: folder not found' in line and 'normal-light' in line


def test_folder_without_images_is_named(tmp_path):
    make_dataset_folders(str(tmp_path / 'data'))
    for name in os.listdir(tmp_path / 'data' / 'trainA'):
        os.remove(tmp_path / 'data' / 'trainA' / name)
    (tmp_path / 'data' / 'trainA' / 'readme.txt').write_text('no images here')
    line = one_line_error(run_script('train.py', *train_argv(tmp_path)))
    assert 'trainA: no images found' in line


def test_corrupt_test_images_are_skipped_named_and_counted(tmp_path):
    import json
    data = str(tmp_path / 'data')
    write_image(os.path.join(data, 'testA', 'good.png'), (20, 12))
    (tmp_path / 'data' / 'testA' / 'empty.png').write_bytes(b'')
    write_image(os.path.join(data, 'testA', 'truncated.jpg'), (64, 64))
    path = tmp_path / 'data' / 'testA' / 'truncated.jpg'
    path.write_bytes(path.read_bytes()[:200])
    with open(os.path.join(ROOT, 'tests', 'fixtures', 'official_nerco', 'manifest.json')) as f:
        write_official_checkpoints(tmp_path / 'saves' / 'LSRW', json.load(f))
    result = run_script('test.py', '--dataroot', data, '--name', 'LSRW', '--checkpoints_dir', str(tmp_path / 'saves'),
                        '--results_dir', str(tmp_path / 'results'), '--gpu_ids', '-1', '--preprocess', 'none')
    line = one_line_error(result)
    assert line == 'error: 2 image(s) could not be enhanced and were skipped'
    assert 'empty.png' in result.stderr and 'truncated.jpg' in result.stderr
    assert os.path.isfile(tmp_path / 'results' / 'LSRW' / 'test_latest' / 'images' / 'good_fake_B.png')


def test_training_skips_an_unreadable_image_and_stops_when_too_many(tmp_path, capsys):
    make_dataset_folders(str(tmp_path / 'data'), n=12)
    (tmp_path / 'data' / 'trainA' / 'img3.png').write_bytes(b'not a png')
    opt = train_options(tmp_path, '--crop_size', '32', '--load_size', '36', '--num_threads', '0')
    loader = create_dataset(opt)
    dataset = loader.dataset
    items = [dataset[(0, 1, i)] for i in range(12)]
    assert all(item['A'].shape == (3, 32, 32) for item in items)
    assert 'img3.png' in capsys.readouterr().err
    for i in range(4, 8):
        (tmp_path / 'data' / 'trainB' / ('img%d.png' % i)).write_bytes(b'')
    with pytest.raises(UserError, match='unreadable images'):
        for i in range(12):
            dataset[(0, 1, i)]


def test_a_run_stopped_by_unreadable_images_saves_latest_first(tmp_path, monkeypatch):
    """Images that become unreadable while a run trains stop it with one line, after `latest` is saved as Ctrl-C
    would save it (the counters of the last step taken); unreadable before the first step, nothing is saved."""
    from data import unaligned_dataset
    make_dataset_folders(str(tmp_path / 'data'), n=4)
    real_load, loads = unaligned_dataset.load_rgb, []

    def vanishing(path):
        loads.append(path)
        if len(loads) > limit:
            raise OSError('No such file or directory')
        return real_load(path)

    monkeypatch.setattr(unaligned_dataset, 'load_rgb', vanishing)
    folder = tmp_path / 'saves' / 'run'
    for limit, saved in ((6, True), (0, False)):  # three steps (an A and a B image each), or none
        loads.clear()
        with pytest.raises(SystemExit) as exit_info:
            train_script.main(train_argv(tmp_path, '--save_latest_freq', '1000', '--overwrite'))
        assert 'unreadable images (more than 10%)' in str(exit_info.value)
        assert ('saved %s/latest_* at epoch 1, image 3 first' % folder in str(exit_info.value)) == saved
        assert os.path.isfile(folder / 'latest_net_G_A.pth') == saved
        if saved:
            state = torch.load(folder / 'latest_train_state.pth', weights_only=True)
            assert state['counters']['total_iters'] == state['counters']['epoch_iter'] == 3
            for name in os.listdir(folder):
                if name.startswith('latest_'):
                    os.remove(folder / name)


def test_unwritable_checkpoints_and_results_dirs_fail_at_start(tmp_path):
    make_dataset_folders(str(tmp_path / 'data'))
    blocker = tmp_path / 'file'
    blocker.write_text('a file, not a folder')
    line = one_line_error(run_script('train.py', *train_argv(tmp_path), '--checkpoints_dir', str(blocker / 'saves')))
    assert '--checkpoints_dir' in line and 'not writable' in line
    line = one_line_error(run_script('test.py', '--dataroot', str(tmp_path / 'data'), '--checkpoints_dir',
                                     str(tmp_path / 'saves'), '--results_dir', str(blocker / 'r'), '--gpu_ids', '-1'))
    assert '--results_dir' in line and 'not writable' in line


def test_full_disk_fails_at_start(tmp_path, monkeypatch, capsys):
    make_dataset_folders(str(tmp_path / 'data'))
    usage = collections.namedtuple('usage', 'total used free')
    monkeypatch.setattr(shutil, 'disk_usage', lambda path: usage(10 ** 9, 10 ** 9, 1000))
    with pytest.raises(SystemExit) as exit_info:
        train_script.main(train_argv(tmp_path))
    assert 'MB free, checkpoints need about' in str(exit_info.value)
    assert not [f for f in os.listdir(tmp_path / 'saves' / 'run') if f.endswith('.pth')]


def test_interrupted_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    model = build_model(train_options(tmp_path, '--ngf', '8', '--ndf', '8', '--name', 'run'))
    model.save_networks('latest')
    path = tmp_path / 'saves' / 'run' / 'latest_net_G_A.pth'
    before = path.read_bytes()
    real_save = torch.save

    def dying_save(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        f.truncate(100)
        raise KeyboardInterrupt  # killed half-way through writing

    with torch.no_grad():
        for p in model.netG_A.parameters():
            p.add_(1.0)
    monkeypatch.setattr(torch, 'save', dying_save)
    with pytest.raises(KeyboardInterrupt):
        model.save_networks('latest')
    monkeypatch.setattr(torch, 'save', real_save)
    assert path.read_bytes() == before
    assert not [f for f in os.listdir(path.parent) if f.endswith('.tmp')]
    torch.load(path, weights_only=True)


NETWORK_NAMES = ('G_A', 'G_B', 'Pre', 'H', 'D_A', 'D_B', 'D_A_edge', 'D_B_edge')
# Four epochs of two images at learning-rate factors 1, 1, 0.5, 0: every step after an interruption in epoch 2
# but the last two changes the weights.
RESUME = ['--n_epochs', '3', '--n_epochs_decay', '1']


def final_state(tmp_path):
    """Every network's weights and the optimizers' states of a run's latest checkpoint."""
    folder = tmp_path / 'saves' / 'run'
    state = {name: torch.load(folder / ('latest_net_%s.pth' % name), weights_only=True) for name in NETWORK_NAMES}
    optimizers = torch.load(folder / 'latest_train_state.pth', weights_only=False)['optimizers']
    state['optimizers'] = {'%d.%s.%s' % (i, index, key): value for i, saved in enumerate(optimizers)
                           for index, entry in saved['state'].items() for key, value in entry.items()}
    return state


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp('uninterrupted')
    make_dataset_folders(str(tmp_path / 'data'))
    assert train_script.main(train_argv(tmp_path, *RESUME)) == 0
    return final_state(tmp_path)


@pytest.mark.parametrize('stop_after, saved_at', [(3, (2, 1)), (4, (2, 2))], ids=['mid-epoch', 'end-of-epoch'])
def test_ctrl_c_then_continue_train_equals_one_uninterrupted_run(tmp_path, monkeypatch, uninterrupted, stop_after,
                                                                 saved_at):
    make_dataset_folders(str(tmp_path / 'data'))
    real_step = NeRCoModel.optimize_parameters
    calls = []

    def step_then_ctrl_c(self):
        result = real_step(self)
        calls.append(1)
        if len(calls) == stop_after:
            os.kill(os.getpid(), signal.SIGINT)
        return result

    monkeypatch.setattr(NeRCoModel, 'optimize_parameters', step_then_ctrl_c)
    assert train_script.main(train_argv(tmp_path, *RESUME)) == 130
    monkeypatch.setattr(NeRCoModel, 'optimize_parameters', real_step)
    state = torch.load(tmp_path / 'saves' / 'run' / 'latest_train_state.pth', weights_only=False)
    assert (state['counters']['epoch'], state['counters']['epoch_iter']) == saved_at
    interrupted = final_state(tmp_path)
    argv = [a for a in train_argv(tmp_path, *RESUME) if a not in ('--seed', '7')]
    assert train_script.main(argv + ['--continue_train']) == 0
    resumed = final_state(tmp_path)
    for name, tensors in uninterrupted.items():
        assert tensors.keys() == resumed[name].keys()
        for key, value in tensors.items():
            assert torch.equal(value, resumed[name][key]), (name, key)
    # The steps after the resume trained: the comparison above could have failed.
    assert not all(torch.equal(value, interrupted['G_A'][key]) for key, value in resumed['G_A'].items())
    assert not all(torch.equal(value, interrupted['D_B_edge'][key]) for key, value in resumed['D_B_edge'].items())


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    make_dataset_folders(str(tmp_path / 'data'))
    real_forward = NeRCoModel.forward
    calls = []

    def forward_nan_on_second_call(self):
        real_forward(self)
        calls.append(1)
        if len(calls) == 2:
            self.fake_B = self.fake_B * float('nan')

    monkeypatch.setattr(NeRCoModel, 'forward', forward_nan_on_second_call)
    with pytest.raises(SystemExit) as exit_info:
        train_script.main(train_argv(tmp_path))
    message = str(exit_info.value)
    assert message.startswith('error: epoch 1, iteration 2: non-finite loss: G_A') and '\n' not in message
    state = torch.load(tmp_path / 'saves' / 'run' / 'latest_train_state.pth', weights_only=False)
    assert state['counters']['total_iters'] == 1
    weights = final_state(tmp_path)
    assert all(torch.isfinite(v).all() for net in weights.values() for v in net.values() if v.is_floating_point())

    calls.clear()
    assert train_script.main(train_argv(tmp_path, '--nan_policy', 'skip', '--name', 'skip')) == 0
    skipped = torch.load(tmp_path / 'saves' / 'skip' / 'latest_net_G_A.pth', weights_only=True)
    assert all(torch.isfinite(v).all() for v in skipped.values())


def test_out_of_gpu_memory_names_the_remedies_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    make_dataset_folders(str(tmp_path / 'data'))
    real_step = NeRCoModel.optimize_parameters
    calls = []

    def step_then_run_out_of_memory(self):
        calls.append(1)
        if len(calls) == 2:
            raise torch.cuda.OutOfMemoryError('CUDA out of memory. Tried to allocate 2.00 GiB')
        return real_step(self)

    monkeypatch.setattr(NeRCoModel, 'optimize_parameters', step_then_run_out_of_memory)
    with pytest.raises(SystemExit) as exit_info:
        train_script.main(train_argv(tmp_path))
    message = str(exit_info.value)
    assert message.startswith('error: epoch 1, iteration 2: out of GPU memory at --crop_size 32')
    assert '\n' not in message
    assert '--activation_checkpointing' in message and '--amp bf16' in message
    state = torch.load(tmp_path / 'saves' / 'run' / 'latest_train_state.pth', weights_only=False)
    assert state['counters']['total_iters'] == 1


def test_an_image_too_large_for_the_gpu_is_skipped_and_named(tmp_path):
    import json
    data = str(tmp_path / 'data')
    write_image(os.path.join(data, 'testA', 'small.png'), (20, 12))
    write_image(os.path.join(data, 'testA', 'huge.png'), (36, 28))
    with open(os.path.join(ROOT, 'tests', 'fixtures', 'official_nerco', 'manifest.json')) as f:
        write_official_checkpoints(tmp_path / 'saves' / 'LSRW', json.load(f))
    entry = tmp_path / 'test_with_a_small_gpu.py'
    entry.write_text(f"""import runpy, sys, torch
sys.path.insert(0, {ROOT!r})
from models.nerco import NeRCoInference
real_enhance = NeRCoInference.enhance
def enhance(self, real_A, tile=0, ops=None, step=None):
    if real_A.shape[-1] > 30:
        raise torch.cuda.OutOfMemoryError('CUDA out of memory')
    return real_enhance(self, real_A, tile)
NeRCoInference.enhance = enhance
runpy.run_path({os.path.join(ROOT, 'test.py')!r}, run_name='__main__')
""")
    result = subprocess.run([sys.executable, str(entry), '--dataroot', data, '--name', 'LSRW', '--checkpoints_dir',
                             str(tmp_path / 'saves'), '--results_dir', str(tmp_path / 'results'), '--gpu_ids', '-1',
                             '--preprocess', 'none'], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert one_line_error(result) == 'error: 1 image(s) could not be enhanced and were skipped'
    huge = os.path.join(data, 'testA', 'huge.png')
    assert 'skipped %s: out of GPU memory at 36x28; try --tile 512, --amp bf16' % huge in result.stderr
    images = tmp_path / 'results' / 'LSRW' / 'test_latest' / 'images'
    assert os.path.isfile(images / 'small_fake_B.png') and not os.path.exists(images / 'huge_fake_B.png')


def too_many_unreadable(tmp_path):
    """Training data of which a quarter cannot be read: the error comes from a data-loading worker."""
    make_dataset_folders(str(tmp_path / 'data'), n=4)
    for name in ('img1.png', 'img2.png'):
        (tmp_path / 'data' / 'trainB' / name).write_bytes(b'not an image')


def a_test_set(tmp_path):
    write_image(str(tmp_path / 'data' / 'testA' / 'a.png'), (24, 20))


def a_file(tmp_path):
    (tmp_path / 'file').write_text('a file, not a folder')


COMMANDS = {
    # command: (set-up, arguments, what the one line says)
    'train.py': (too_many_unreadable, [*train_argv(pathlib.PurePath('{tmp}')), '--num_threads', '1'],
                 'unreadable images (more than 10%)'),
    'test.py': (a_test_set, ['--dataroot', '{tmp}/data', '--name', 'none', '--checkpoints_dir', '{tmp}/saves',
                             '--results_dir', '{tmp}/results', *TINY], 'latest_net_G_A.pth: checkpoint not found'),
    'scripts/enhance.py': (None, ['{tmp}/missing.png', '--checkpoints', '{tmp}', '--out', '{tmp}/out'],
                           'missing.png: no such file or folder'),
    'scripts/evaluate.py': (None, ['{tmp}/nowhere'], 'nowhere: folder not found'),
    'scripts/prepare_dataset.py': (a_file, ['--lol', '{tmp}', '--out', '{tmp}/file'], 'is a file, not a folder'),
    'scripts/make_demo_data.py': (a_file, ['--out', '{tmp}/file/demo'], '--out {tmp}/file/demo is not writable'),
    'scripts/benchmark.py': (None, ['--device', 'no_such_device'], '--device no_such_device: not available'),
}


@pytest.mark.parametrize('command', sorted(COMMANDS))
def test_every_command_reports_a_user_error_in_one_line(tmp_path, command):
    set_up, argv, expected = COMMANDS[command]
    if set_up:
        set_up(tmp_path)
    result = run_script(command, *[a.format(tmp=tmp_path) for a in argv])
    assert result.returncode == 1 and 'Traceback' not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith('error: ')]
    assert len(lines) == 1 and expected.format(tmp=tmp_path) in lines[0], result.stderr[-3000:]


@pytest.mark.parametrize('argv, message', [
    (['--height', '0'], '--height 0: give 1 or more'), (['--repeats', '0'], '--repeats 0: give 1 or more'),
    (['--width', '-3'], '--width -3: give 1 or more'), (['--warmup', '-1'], '--warmup -1: give 0 or more'),
    (['--mode', 'train', '--height', '16'], '--height 16: training steps crop squares of --height pixels, and the '
                                            'discriminators need 24 or more')])
def test_benchmark_refuses_sizes_it_cannot_measure_naming_its_own_flag(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_script('scripts/benchmark.py').parse_args(argv)
    assert exit_info.value.code == 2 and capsys.readouterr().err.strip().endswith('error: ' + message)


def test_benchmark_names_its_own_flags_for_what_train_and_test_options_refuse(capsys, monkeypatch):
    """What train.py's or test.py's options refuse (a --height that is not a multiple of 4, CUDA graphs in training)
    used to print train.py's usage, naming --crop_size or --compile_mode; and a size that does not fit in memory was
    the allocator's traceback."""
    main = load_script('scripts/benchmark.py').main
    for argv, message in (
            (['--mode', 'train', '--height', '30'], 'error: --height 30 is not a multiple of 4'),
            (['--mode', 'train', '--height', '32', '--compile', '--compile-mode', 'reduce-overhead'],
             'error: --compile-mode reduce-overhead: CUDA graphs reuse their output memory')):
        line = refused(capsys, main, '--one', '--ngf', '8', '--width', '32', '--repeats', '1', *argv)
        assert line.startswith(message), line

    def no_memory(*args, **kwargs):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 288000000000 bytes.")
    monkeypatch.setattr(torch, 'rand', no_memory)
    line = refused(capsys, main, '--one', '--ngf', '8', '--batch', '100000', '--repeats', '1')
    assert line == 'error: out of CPU memory at --batch 100000 --height 400 --width 600 (infer); try smaller ones'

