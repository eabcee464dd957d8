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
from data import EpochSampler
from enhancer import load_enhancer
from metrics import scores as metrics


def test_sampler_shards_one_permutation_between_ranks():
    shards = [list(EpochSampler(5, True, seed=3, rank=r, world=2)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 3
    indices = [key[2] for shard in shards for key in shard]
    assert set(indices) == set(range(5))
    assert list(EpochSampler(5, True, seed=3)) != list(EpochSampler(5, True, seed=4))


def torchrun(tmp_path, entry, name, *extra):
    """train.py's entry point (or a patched one) under torchrun with 2 gloo processes on tiny generated data."""
    data = make_dataset_folders(str(tmp_path / 'data'), n=4, size=(40, 36))
    argv = ['--dataroot', data, '--name', name, '--checkpoints_dir', str(tmp_path / 'saves'), *TINY,
            '--clip_pretrained', 'none', '--display_id', '0', '--load_size', '36', '--crop_size', '32',
            '--n_epochs', '1', '--n_epochs_decay', '1', '--print_freq', '1', '--display_freq', '2',
            '--save_epoch_freq', '1', '--seed', '5', *extra]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    result = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
                             entry, *argv], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'weights identical on all 2 processes' in result.stdout
    return data, result


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
