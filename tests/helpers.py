"""Helpers shared by the test modules: tiny options, generated images and data sets, running a command as a user
would, and tiny checkpoints."""
import contextlib
import html.parser
import importlib.util
import os
import subprocess
import sys
import urllib.parse

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from conftest import ROOT, build_model, train_options
from fill import fill_tensor
from metrics import scores
from options.test_options import TestOptions
from options.train_options import TrainOptions

TINY = ['--gpu_ids', '-1', '--ngf', '8', '--ndf', '8', '--num_threads', '0']
TRAIN = ['--clip_pretrained', 'none', '--display_id', '0', '--load_size', '36', '--crop_size', '32',
         '--n_epochs', '1', '--n_epochs_decay', '1', '--print_freq', '1', '--save_latest_freq', '1',
         '--save_epoch_freq', '10', '--no_html', '--seed', '7', '--pool_size', '2']


def write_image(path, size=(24, 20), mode='RGB', seed=0, **save_args):
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    w, h = size
    if mode == 'I;16':
        Image.fromarray(rng.integers(0, 65535, (h, w), dtype=np.uint16)).save(path)
        return
    image = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    image.convert(mode).save(path, **save_args)


def make_dataset_folders(root, n=2, size=(40, 36)):
    for folder in ('trainA', 'trainB', 'testA'):
        for i in range(n):
            write_image(os.path.join(root, folder, 'img%d.png' % i), size, seed=i + hash(folder) % 100)
    return root


@contextlib.contextmanager
def umask(mask):
    """The process's umask set to mask for the block (scripts started inside inherit it)."""
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def load_script(path):
    """A script of scripts/ (path relative to the repository) as a module, to call its functions in-process; named
    by its path (scripts.export), as mutmut names the functions it mutates."""
    spec = importlib.util.spec_from_file_location(os.path.splitext(path)[0].replace('/', '.'),
                                                  os.path.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(script, *args, **run_args):
    """script (relative to the repository) run as a user would, in a new process; run_args go to subprocess.run."""
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, **run_args)


def refused(capsys, main, *argv):
    """The last line a command's main(argv) ends with on bad input (its exit status is not 0), without a traceback."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    code = exit_info.value.code
    assert code != 0
    return (code if isinstance(code, str) else capsys.readouterr().err).strip().splitlines()[-1]


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.src, self.href = [], []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ('src', 'href'):
                getattr(self, name).append(value)


def referenced_files_exist(page):
    """The image paths of an HTML page, as a browser reads them (URL-decoded), after checking that each src and
    href names a file beside the page."""
    links = Links()
    with open(page, encoding='utf-8') as f:
        links.feed(f.read())
    assert links.src, page
    for ref in links.src + links.href:
        path = urllib.parse.urlsplit(ref).path  # what a browser requests: '#...' is a fragment, '?...' a query
        assert os.path.isfile(os.path.join(os.fsencode(os.path.dirname(page)), urllib.parse.unquote_to_bytes(path))), \
            ref
    return [urllib.parse.unquote(ref) for ref in links.src]


def one_line_error(result):
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and 'Traceback' not in result.stderr, result.stderr[-2000:]
    return lines[-1]


def train_argv(tmp_path, *extra):
    return ['--dataroot', str(tmp_path / 'data'), '--name', 'run', '--checkpoints_dir', str(tmp_path / 'saves'),
            *TINY, *TRAIN, *extra]


def image_pair(seed, size=(45, 61)):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    noisy = np.clip(truth.astype(int) + rng.integers(-40, 41, truth.shape), 0, 255).astype(np.uint8)
    return noisy, truth


def make_pairs(root, folders, names):
    for folder in folders:
        for side in ('low', 'high'):
            for i, name in enumerate(names):
                path = os.path.join(root, folder, side, name)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(path)


def make_validation_set(root, ground_truth=True, n=2, size=(200, 196)):
    """testA (and testB) with images large enough for NIQE (two 96x96 blocks)."""
    for i in range(n):
        write_image(os.path.join(root, 'testA', 'v%d.png' % i), size, seed=20 + i)
        if ground_truth:
            write_image(os.path.join(root, 'testB', 'v%d.png' % i), size, seed=30 + i)
    return root


def save_tiny_checkpoint(tmp_path, name='tiny'):
    """Random tiny weights saved as train.py saves them (with train_opt.txt and .json recording --ngf 8)."""
    options = TrainOptions()
    opt = train_options(tmp_path, '--name', name, '--ngf', '8', '--ndf', '8', options=options)
    torch.manual_seed(0)
    model = build_model(opt)
    model.save_networks('latest')
    options.save(opt, model.save_dir)
    return model.save_dir


def make_test_options(tmp_path, *extra):
    argv = ['--dataroot', str(tmp_path / 'data'), '--checkpoints_dir', str(tmp_path / 'saves'), '--name', 'LSRW',
            '--gpu_ids', '-1'] + list(extra)
    return TestOptions().parse(argv)


def write_official_checkpoints(directory, manifest, names=('G_A', 'Pre', 'H'), prefix='', extra=None):
    """latest_net_<name>.pth files as the official code writes them, filled from manifest.json."""
    os.makedirs(directory, exist_ok=True)
    for name in names:
        state = {prefix + k: fill_tensor(k, shape, prefix=name + '.') for k, shape in manifest[name].items()}
        state.update((extra or {}).get(name, {}))
        torch.save(state, os.path.join(directory, 'latest_net_%s.pth' % name))


def fake_alexnet(hub):
    """Random AlexNet weights where torchvision caches the real ones (so LPIPS runs without a download)."""
    os.makedirs(os.path.join(hub, 'checkpoints'), exist_ok=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet().state_dict(), os.path.join(hub, 'checkpoints', scores.ALEXNET_FILE))
