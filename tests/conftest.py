"""Shared fixtures: a NeRCo model filled with the parity weights, and tiny generated datasets."""
import json
import os
import sys
import warnings

import numpy as np
import pytest
import torch

if 'PYTEST_XDIST_WORKER' in os.environ:
    # make test runs a test process per core: more OpenMP threads than cores spin while they wait for one (the suite
    # took 1.8 times as long), so each test process and the scripts it starts use one thread unless told otherwise.
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    torch.set_num_threads(int(os.environ['OMP_NUM_THREADS']))

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'tests', 'fixtures'))

from fill import fill_state_dict  # noqa: E402
from models import create_model  # noqa: E402
from options.train_options import TrainOptions  # noqa: E402

FIXTURES = os.path.join(ROOT, 'tests', 'fixtures', 'official_nerco')
NETWORKS = ('G_A', 'G_B', 'Pre', 'H', 'D_A', 'D_B', 'D_A_edge', 'D_B_edge')


def train_options(tmp_path, *extra, options=None):
    """Parsed training options for tmp_path (CPU, random CLIP); pass options= to keep the TrainOptions object."""
    argv = ['--dataroot', str(tmp_path / 'data'), '--checkpoints_dir', str(tmp_path / 'saves'), '--gpu_ids', '-1',
            '--clip_pretrained', 'none', '--display_id', '0'] + list(extra)
    return (options or TrainOptions()).parse(argv)


def build_model(opt):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return create_model(opt)


def fill_model(model):
    """Load the deterministic parity weights into every network and CLIP."""
    for name in NETWORKS:
        net = getattr(model, 'net' + name)
        net.load_state_dict(fill_state_dict(net.state_dict(), name + '.'))
    if hasattr(model, 'clip_model'):
        model.clip_model.load_state_dict(fill_state_dict(model.clip_model.state_dict(), 'clip.'))
    return model


@pytest.fixture(scope='session')
def manifest():
    with open(os.path.join(FIXTURES, 'manifest.json')) as f:
        return json.load(f)


@pytest.fixture(scope='session')
def scalars():
    with open(os.path.join(FIXTURES, 'scalars.json')) as f:
        return json.load(f)


@pytest.fixture(scope='session')
def tensors():
    with np.load(os.path.join(FIXTURES, 'tensors.npz')) as npz:
        return {k: torch.from_numpy(npz[k]) for k in npz.files}


DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA'))]


@pytest.fixture(scope='module', params=DEVICES)
def parity_model(request, tmp_path_factory):
    """The official parity setting: training defaults, --pool_size 0, float32, filled weights; on the CPU and,
    where there is one, on a CUDA GPU."""
    torch.set_grad_enabled(True)
    gpu = '0' if request.param == 'cuda' else '-1'
    opt = train_options(tmp_path_factory.mktemp('parity'), '--pool_size', '0', '--gpu_ids', gpu)
    return fill_model(build_model(opt))
