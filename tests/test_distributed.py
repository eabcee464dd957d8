"""torchrun with 2 gloo processes on the CPU: identical weights on both ranks, files from rank 0 only, and the
checkpoints load in a single-process run."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT
from helpers import TINY, make_dataset_folders, make_validation_set, run_script

ONE_THREAD = dict(os.environ, OMP_NUM_THREADS='1')
from data import EpochSampler
from enhancer import load_enhancer
from metrics import scores as metrics


def test_sampler_shards_one_permutation_between_ranks():
    shards = [list(EpochSampler(5, True, seed=3, rank=r, world=2)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 3
    indices = [key[2] for shard in shards for key in shard]
    assert set(indices) == set(range(5))
    assert list(EpochSampler(5, True, seed=3)) != list(EpochSampler(5, True, seed=4))


def tiny_run(tmp_path, name, *extra):
    """(data folder, train.py arguments) of a tiny run on generated data."""
    data = make_dataset_folders(str(tmp_path / 'data'), n=4, size=(40, 36))
    return data, ['--dataroot', data, '--name', name, '--checkpoints_dir', str(tmp_path / 'saves'), *TINY,
                  '--clip_pretrained', 'none', '--display_id', '0', '--load_size', '36', '--crop_size', '32',
                  '--n_epochs', '1', '--n_epochs_decay', '1', '--print_freq', '1', '--display_freq', '2',
                  '--save_epoch_freq', '1', '--seed', '5', *extra]


def torchrun(tmp_path, entry, name, *extra):
    """train.py's entry point (or a patched one) under torchrun with 2 gloo processes on tiny generated data."""
    data, argv = tiny_run(tmp_path, name, *extra)
    result = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
                             entry, *argv], cwd=ROOT, capture_output=True, text=True, timeout=300, env=ONE_THREAD)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'weights identical on all 2 processes' in result.stdout
    return data, result


def test_torchrun_without_cuda_says_so_once_and_refuses_batch_norm_in_one_line(tmp_path):
    """The default --gpu_ids 0 on a machine without CUDA: one warning (not one per process) that the processes run
    on the CPU; --norm batch, which SyncBatchNorm cannot share between CPU processes: one error line, from rank 0."""
    if torch.cuda.is_available():
        pytest.skip('this machine has CUDA')
    _, argv = tiny_run(tmp_path, 'cpu', '--gpu_ids', '0', '--norm', 'batch')
    result = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
                             os.path.join(ROOT, 'train.py'), *argv], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env=ONE_THREAD)
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    warning = 'CUDA is not available; the 2 torchrun processes run on the CPU'
    assert len([line for line in lines if warning in line]) == 1
    errors = [line for line in lines if line.startswith('error: ')]
    assert errors == ['error: --norm batch under torchrun shares batch statistics between the processes through CUDA '
                      '(SyncBatchNorm), and these run on the CPU: use --norm instance, or GPUs'], result.stderr[-3000:]


def test_commands_other_than_train_py_refuse_torchrun_in_one_line(tmp_path):
    """test.py under torchrun used to enhance half the images (the sampler shards them) while the other process was
    refused by the results folder's lock; every command but train.py runs in one process, and says so once."""
    data, _ = tiny_run(tmp_path, 'test')
    for script, argv in (('test.py', ['--dataroot', data, '--results_dir', str(tmp_path / 'results'), *TINY]),
                         ('scripts/enhance.py', [data, '--checkpoints', data, '--out', str(tmp_path / 'out')])):
        result = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node',
                                 '2', os.path.join(ROOT, script), *argv], cwd=ROOT, capture_output=True, text=True,
                                timeout=300, env=ONE_THREAD)
        assert result.returncode != 0
        errors = [line for line in result.stderr.splitlines() if line.startswith('error: ')]
        assert errors == ['error: %s runs in one process: start it with python, not torchrun (only train.py runs '
                          'under torchrun)' % os.path.basename(script)], result.stderr[-3000:]
    assert not os.path.exists(tmp_path / 'results') and not os.path.exists(tmp_path / 'out')


def test_torchrun_two_cpu_processes(tmp_path):
    # Every file written atomically (checkpoints, training state, pages) ends in os.replace: log who did it.
    entry = tmp_path / 'log_writes.py'
    entry.write_text(f"""import os, sys
sys.path.insert(0, {ROOT!r})
real_replace = os.replace
def replace(src, dst, *args, **kwargs):
    with open(os.path.join({str(tmp_path)!r}, 'written_by_rank_' + os.environ['RANK']), 'a') as log:
        log.write(os.path.basename(dst) + '\\n')
    return real_replace(src, dst, *args, **kwargs)
os.replace = replace
import train
train.main()
""")
    val = make_validation_set(str(tmp_path / 'val'))
    data, result = torchrun(tmp_path, str(entry), 'ddp', '--val_dataroot', val)
    assert result.stderr.count('note: --clip_pretrained none: CLIP has random weights') == 1  # not one per process
    with open(tmp_path / 'written_by_rank_0') as log:
        assert {'latest_net_G_A.pth', 'latest_net_D_B_edge.pth', 'latest_train_state.pth'} <= set(log.read().split())
    assert not os.path.exists(tmp_path / 'written_by_rank_1')
    assert result.stdout.count('The number of training images = 2 (per process)') == 1
    saves = str(tmp_path / 'saves')
    run_dir = os.path.join(saves, 'ddp')
    with open(os.path.join(run_dir, 'loss_log.txt')) as log:
        assert log.read().count('Training Loss') == 1
    state = torch.load(os.path.join(run_dir, 'latest_net_G_A.pth'), weights_only=True)
    assert not any(key.startswith('module.') for key in state)
    counters = torch.load(os.path.join(run_dir, 'latest_train_state.pth'), weights_only=False)['counters']
    assert (counters['epoch'], counters['total_iters']) == (2, 4)

    # Rank 0 validated; the others waited. Its last numbers are those of one process on the final weights.
    with open(os.path.join(run_dir, 'val_metrics.csv')) as f:
        last = list(csv.DictReader(f))[-1]
    enhance, threads = load_enhancer(run_dir), torch.get_num_threads()
    torch.set_num_threads(1)  # as the torchrun processes (OMP_NUM_THREADS=1): the same float summation order
    try:
        scores = [metrics.psnr(enhance(np.asarray(Image.open(os.path.join(val, 'testA', 'v%d.png' % i)))),
                               np.asarray(Image.open(os.path.join(val, 'testB', 'v%d.png' % i)))) for i in range(2)]
    finally:
        torch.set_num_threads(threads)
    assert (int(last['epoch']), int(last['iteration'])) == (2, 4)
    assert float(last['psnr']) == pytest.approx(np.mean(scores), abs=1e-9)
    test = run_script('test.py', '--dataroot', data, '--name', 'ddp', '--checkpoints_dir', saves, *TINY,
                      '--results_dir', str(tmp_path / 'results'), '--preprocess', 'none')
    assert test.returncode == 0, test.stderr[-2000:]
    assert os.path.isfile(tmp_path / 'results' / 'ddp' / 'test_latest' / 'images' / 'img0_fake_B.png')


def test_a_non_finite_loss_on_one_process_is_skipped_by_all(tmp_path):
    entry = tmp_path / 'nan_on_rank_1.py'
    entry.write_text(f"""import os, sys
sys.path.insert(0, {ROOT!r})
import train
from models.NeRCo_model import NeRCoModel
real_forward, calls = NeRCoModel.forward, []
def forward(self):
    real_forward(self)
    calls.append(1)
    if len(calls) == 2 and os.environ['RANK'] == '1':
        self.fake_B = self.fake_B * float('nan')
NeRCoModel.forward = forward
train.main()
""")
    _, result = torchrun(tmp_path, str(entry), 'nan', '--nan_policy', 'skip')
    assert 'step skipped' in result.stdout
    state = torch.load(tmp_path / 'saves' / 'nan' / 'latest_net_G_A.pth', weights_only=True)
    assert all(torch.isfinite(v).all() for v in state.values())


def test_other_ranks_wait_for_rank_0_to_complete_a_set_left_half_renamed_by_a_kill(tmp_path):
    """A save killed after its commit leaves files under their temporary names; rank 0 completes the set on entry
    (here slowly), and rank 1 must not read the checkpoints before that."""
    torchrun(tmp_path, 'train.py', 'kill')
    folder = tmp_path / 'saves' / 'kill'
    manifest = json.loads((folder / 'latest_checkpoint.json').read_text())
    for name in ('latest_net_G_A.pth', 'latest_net_Pre.pth', 'latest_train_state.pth'):
        temporary = '.%s.killed.tmp' % name
        os.replace(folder / name, folder / temporary)
        manifest['files'][name]['temporary'] = temporary
    (folder / 'latest_checkpoint.json').write_text(json.dumps(manifest))
    entry = tmp_path / 'slow_recovery.py'
    entry.write_text(f"""import os, sys, time
sys.path.insert(0, {ROOT!r})
import train
from models import checkpoints
real_recover = checkpoints.recover
def recover(folder):
    time.sleep(3)
    real_recover(folder)
checkpoints.recover = recover
train.main()
""")
    _, result = torchrun(tmp_path, str(entry), 'kill', '--continue_train', '--n_epochs', '2')
    assert 'resuming at epoch 3, image 0 (4 images seen)' in result.stdout
    assert not [name for name in os.listdir(folder) if name.endswith('.tmp')]


SAME_AS_ONE_PROCESS = """import os, sys
sys.path.insert(0, {root!r})
import torch
from torch.nn.parallel import DistributedDataParallel
import train
import models.NeRCo_model as nerco
from models.mask_extractor import MaskExtractor

torch.set_default_dtype(torch.float64)  # float32 rounding moves these ill-conditioned gradients by up to 1e-3
real_load_clip, real_set_input = nerco.load_clip, nerco.NeRCoModel.set_input
def load_clip(*args):  # the same random CLIP in every process, as a weights file would give
    rng = torch.get_rng_state()
    torch.manual_seed(123)
    clip = real_load_clip(*args).double()
    torch.set_rng_state(rng)
    return clip
def set_input(self, data):
    real_set_input(self, {{k: v.double() if torch.is_tensor(v) else v for k, v in data.items()}})
nerco.load_clip, nerco.NeRCoModel.set_input = load_clip, set_input

real_init, real_forward, steps = MaskExtractor.__init__, MaskExtractor.forward, []
real_step = nerco.NeRCoModel.optimize_parameters
def init(self, *args, **kwargs):  # a parameter of H with a gradient in the first step only
    real_init(self, *args, **kwargs)
    self.extra = torch.nn.Parameter(torch.ones(3))
def forward(self, x, *ops):
    H, mask = real_forward(self, x, *ops)
    return (H + 1e-3 * self.extra.sum() if len(steps) == 1 else H), mask
def optimize_parameters(self):
    if os.environ.get('WORLD_SIZE', '1') != '1':
        assert all(isinstance(net, DistributedDataParallel) for net in self.networks())
    steps.append(1)
    return real_step(self)
MaskExtractor.__init__, MaskExtractor.forward, nerco.NeRCoModel.optimize_parameters = init, forward, optimize_parameters

real_check, checked = nerco.NeRCoModel.check_finite, []
def check_finite(self, loss, names):  # called between backward and the optimizer's step: keep step 1's gradients
    checked.append(1)
    if len(steps) == 1 and os.environ.get('RANK', '0') == '0':
        grads = {{name: torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None])
                 for name, net in zip(self.model_names, self.networks())
                 if any(p.grad is not None for p in net.parameters())}}
        torch.save(grads, os.path.join({out!r}, 'grads_%s_%d.pt' % (os.environ.get('WORLD_SIZE', '1'), len(checked))))
    return real_check(self, loss, names)
nerco.NeRCoModel.check_finite = check_finite
train.main()
"""


def test_two_processes_equal_one_process_on_the_same_global_batch(tmp_path):
    """Two processes of batch 1 and one process of batch 2 see the same images (the samples follow one permutation,
    and every random choice of the data comes from its key), start from the same weights (rank 0's, seed 5 + 0) and
    compute the same mean loss, with the pools off (--pool_size 0), the edge filter deterministic (--edge_rgb
    repeat) and the same CLIP in every process; so, in float64, the averaged gradients of their first step (of two,
    one epoch at the full learning rate) agree up to summation order (weights after Adam's steps would not: it turns
    the rounding noise of gradients that are zero in exact arithmetic, such as those of a bias before an instance
    norm, into steps of the learning rate). H has an extra parameter with a gradient in the first step only: as in
    one process, the optimizer leaves it alone in the second (an averaged zero gradient would let Adam's momentum
    move it)."""
    entry = tmp_path / 'same_as_one_process.py'
    entry.write_text(SAME_AS_ONE_PROCESS.format(root=ROOT, out=str(tmp_path)))
    common = ('--pool_size', '0', '--edge_rgb', 'repeat', '--n_epochs_decay', '0', '--lr_step_after_epoch')
    torchrun(tmp_path, str(entry), 'two', *common)
    _, argv = tiny_run(tmp_path, 'one', *common, '--batch_size', '2')
    one = subprocess.run([sys.executable, str(entry), *argv], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env=ONE_THREAD)
    assert one.returncode == 0, one.stderr[-3000:]
    for half, networks in ((1, ('G_A', 'G_B', 'Pre', 'H')), (2, ('D_A', 'D_B', 'D_A_edge', 'D_B_edge'))):
        two, one = (torch.load(tmp_path / ('grads_%d_%d.pt' % (world, half)), weights_only=True) for world in (2, 1))
        assert sorted(two) == sorted(one) == sorted(networks)
        for name in networks:
            assert two[name].dtype == torch.float64
            assert (two[name] - one[name]).norm() <= 1e-9 * one[name].norm(), name
    extra = [torch.load(tmp_path / 'saves' / run / 'latest_net_H.pth', weights_only=True)['extra']
             for run in ('two', 'one')]
    assert not torch.equal(extra[1], torch.ones(3))  # it was trained in the first step
    assert torch.allclose(extra[0], extra[1], rtol=0, atol=1e-7)
