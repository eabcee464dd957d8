"""Options, datasets, and train.py -> test.py end to end through the real scripts, with resume and HTML pages."""
import json
import re
import os

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import train_options
from helpers import TINY, make_dataset_folders, referenced_files_exist, run_script, save_tiny_checkpoint, write_image
from util import runtime
from util.util import UserError
from data import create_dataset
from options.test_options import TestOptions
from options.train_options import TrainOptions

def test_official_training_flags_are_accepted(tmp_path):
    opt = train_options(tmp_path, '--name', 'LSRW', '--netG', 'resnet_9blocks', '--netD', 'basic', '--norm',
                        'instance', '--gan_mode', 'lsgan', '--lambda_A', '10', '--lambda_B', '10',
                        '--lambda_identity', '0.5', '--pool_size', '50', '--lr_policy', 'linear', '--n_epochs', '100',
                        '--n_epochs_decay', '200', '--display_freq', '59456', '--save_epoch_freq', '5')
    assert opt.name == 'LSRW' and opt.no_dropout and opt.load_size == 512 and opt.crop_size == 512
    # Parsing writes nothing: train.py saves train_opt.txt / .json once the run is known to start.
    assert not os.path.exists(tmp_path / 'saves' / 'LSRW')


def test_official_test_command_is_accepted(tmp_path):
    opt = TestOptions().parse(['--dataroot', str(tmp_path), '--name', 'LSRW', '--preprocess=none',
                               '--checkpoints_dir', str(tmp_path / 'saves')])
    assert opt.preprocess == 'none' and opt.epoch == 'latest' and opt.results_dir == './results/'
    assert opt.dataset_mode == 'unaligned_test' and not opt.isTrain


@pytest.mark.parametrize('argv, message', [
    (['--netG', 'foo'], "invalid choice: 'foo'"),
    (['--preprocess', 'bar'], "invalid choice: 'bar'"),
    (['--crop_size', '600'], '--crop_size 600 is larger than --load_size 512'),
    (['--crop_size', '126', '--load_size', '130'], 'not a multiple of 4'),
    (['--netG', 'unet_128', '--crop_size', '32', '--load_size', '36'],
     '--crop_size 32 is not a multiple of 128 (--netG unet_128 halves the image 7 times)'),
    (['--netG', 'unet_256', '--crop_size', '128', '--load_size', '136'], 'not a multiple of 256'),
])
def test_bad_options_are_rejected_at_parse_time(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit):
        TrainOptions().parse(['--dataroot', str(tmp_path), '--checkpoints_dir', str(tmp_path)] + argv)
    assert message in capsys.readouterr().err


def test_negative_tile_is_rejected_at_parse_time(tmp_path, capsys):
    with pytest.raises(SystemExit):
        TestOptions().parse(['--dataroot', str(tmp_path), '--checkpoints_dir', str(tmp_path), '--tile', '-512'])
    assert '--tile -512: give the band size in pixels (e.g. 512), or 0' in capsys.readouterr().err


def test_bf16_on_a_gpu_without_it_is_rejected_at_start(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime, 'choose_device', lambda requested: ([0], 'cuda:0'))
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda: False)
    monkeypatch.setattr(torch.cuda, 'get_device_name', lambda device: 'Tesla V100')
    opt = TrainOptions().parse(['--dataroot', str(tmp_path), '--checkpoints_dir', str(tmp_path), '--amp', 'bf16'])
    with pytest.raises(UserError) as error:
        runtime.setup(opt)
    assert '--amp bf16: Tesla V100 has no bfloat16 support; use --amp fp16' in str(error.value)


def test_dataset_keeps_odd_sizes_without_testB_and_ignores_other_files(tmp_path):
    write_image(str(tmp_path / 'testA' / 'odd.png'), (37, 23))
    write_image(str(tmp_path / 'testA' / 'sub' / 'nested.jpg'), (10, 13))
    (tmp_path / 'testA' / 'notes.txt').write_text('not an image')
    (tmp_path / 'testA' / 'Thumbs.db').write_bytes(b'\0\1')
    opt = TestOptions().parse(['--dataroot', str(tmp_path), '--preprocess', 'none', '--num_threads', '0',
                               '--checkpoints_dir', str(tmp_path / 'saves')])
    opt.serial_batches = True
    items = list(create_dataset(opt))
    assert [os.path.basename(b['A_paths'][0]) for b in items] == ['odd.png', 'nested.jpg']
    assert [tuple(b['A'].shape[-2:]) for b in items] == [(23, 37), (13, 10)]
    assert items[0]['B_paths'] == ['']


def test_images_become_the_tensors_of_the_official_torchvision_transforms(tmp_path):
    """The official code turns images into tensors with torchvision's ToTensor and Normalize(0.5, 0.5); the data
    sets and the inference door do it without torchvision (seconds to import), bit for bit, for every 8-bit value."""
    import torchvision.transforms as transforms
    from models.inference import as_batch
    pixels = (np.arange(16 * 16 * 3) * 7 % 256).astype(np.uint8).reshape(16, 16, 3)
    (tmp_path / 'testA').mkdir()
    Image.fromarray(pixels).save(tmp_path / 'testA' / 'all.png')
    official = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)])(
        Image.fromarray(pixels))
    opt = TestOptions().parse(['--dataroot', str(tmp_path), '--preprocess', 'none', '--num_threads', '0',
                               '--checkpoints_dir', str(tmp_path / 'saves')])
    loaded = next(iter(create_dataset(opt)))['A'][0]
    assert len(np.unique(pixels)) == 256
    for tensor in (loaded, as_batch(pixels)[0][0], as_batch(Image.fromarray(pixels))[0][0]):
        assert tensor.dtype == official.dtype and torch.equal(tensor, official)


@pytest.mark.parametrize('mode', ['L', 'RGBA', 'P', 'CMYK', 'I;16'])
def test_image_modes_become_rgb(tmp_path, mode):
    from util.images import load_rgb
    path = str(tmp_path / ('x.tif' if mode == 'CMYK' else 'x.png'))
    write_image(path, (9, 7), mode)
    image = load_rgb(path)
    assert image.mode == 'RGB' and image.size == (9, 7)
    if mode == 'I;16':
        assert np.asarray(image).max() > 200


def test_floating_point_images_in_0_1_are_scaled_not_made_black(tmp_path):
    """A 32-bit float TIFF with values in [0, 1] (the convention of float images) came in as 0s and 1s of 255."""
    from util.images import load_rgb
    values = np.random.default_rng(0).random((7, 9)).astype(np.float32)
    Image.fromarray(values).save(tmp_path / 'float.tif')
    image = np.asarray(load_rgb(str(tmp_path / 'float.tif')))
    assert image.shape == (7, 9, 3) and np.array_equal(image[..., 0], np.round(values * 255).astype(np.uint8))


def test_exif_orientation_is_applied(tmp_path):
    path = str(tmp_path / 'rotated.jpg')
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    write_image(path, (30, 10), exif=exif.tobytes())
    from util.images import load_rgb
    assert load_rgb(path).size == (10, 30)


def test_train_then_test_end_to_end_with_resume(tmp_path):
    data = make_dataset_folders(str(tmp_path / 'data'))
    write_image(os.path.join(data, 'testA', 'odd.png'), (27, 18), seed=9)
    saves = str(tmp_path / 'saves')
    common = ['--dataroot', data, '--name', 'tiny', '--checkpoints_dir', saves, *TINY]
    train_args = common + ['--clip_pretrained', 'none', '--display_id', '0', '--load_size', '36', '--crop_size', '32',
                           '--n_epochs', '1', '--n_epochs_decay', '1', '--print_freq', '1', '--display_freq', '2',
                           '--update_html_freq', '2', '--save_epoch_freq', '1']
    first = run_script('train.py', *train_args)
    assert first.returncode == 0, first.stderr[-2000:]
    run_dir = os.path.join(saves, 'tiny')
    for name in ('latest_net_G_A.pth', 'latest_net_Pre.pth', 'latest_net_H.pth', '1_net_G_A.pth', '2_net_D_B.pth',
                 'latest_train_state.pth', 'loss_log.txt', 'train_opt.txt'):
        assert os.path.isfile(os.path.join(run_dir, name)), name
    refs = referenced_files_exist(os.path.join(run_dir, 'web', 'index.html'))
    assert refs[0] == 'loss_chart.png'  # the charts on top (matplotlib, beside the page) ...
    assert 'epoch002' in [ref for ref in refs if ref.startswith('images/')][0]  # ... then the results, newest first

    state = torch.load(os.path.join(run_dir, 'latest_train_state.pth'), weights_only=False)['counters']
    assert (state['epoch'], state['total_iters'], state['epoch_done']) == (2, 4, True)
    resumed = run_script('train.py', *train_args, '--continue_train', '--n_epochs_decay', '2')
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert 'resuming at epoch 3, image 0 (4 images seen)' in resumed.stdout
    assert 'epoch 1/' not in resumed.stdout and 'epoch 3/3' in resumed.stdout
    state = torch.load(os.path.join(run_dir, 'latest_train_state.pth'), weights_only=False)
    assert (state['counters']['epoch'], state['counters']['total_iters']) == (3, 6)
    assert state['optimizers'][0]['state'], 'optimizer moments were saved'

    results = str(tmp_path / 'results')
    test = run_script('test.py', *common, '--preprocess', 'none', '--results_dir', results, '--amp', 'bf16')
    assert test.returncode == 0, test.stderr[-2000:]
    images = os.path.join(results, 'tiny', 'test_latest', 'images')
    for stem in ('img0', 'img1', 'odd'):
        source = Image.open(os.path.join(data, 'testA', stem + '.png'))
        for suffix in ('fake_B', 'real_A'):
            assert Image.open(os.path.join(images, '%s_%s.png' % (stem, suffix))).size == source.size
    refs = referenced_files_exist(os.path.join(results, 'tiny', 'test_latest', 'index.html'))
    assert refs[:2] == ['images/img0_real_A.png', 'images/img0_fake_B.png']
    page = open(os.path.join(results, 'tiny', 'test_latest', 'index.html')).read()
    assert page.count('<p>input</p>') == page.count('<p>enhanced</p>') == 3 and '<p>fake_B</p>' not in page


def test_test_script_reports_missing_folder_in_one_line(tmp_path):
    result = run_script('test.py', '--dataroot', str(tmp_path / 'nowhere'), '--checkpoints_dir', str(tmp_path),
                        '--gpu_ids', '-1')
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith('error: ')
    assert 'testA: folder not found' in result.stderr and 'Traceback' not in result.stderr


def no_constant(name):
    raise ValueError('%s is not JSON' % name)


def test_pages_and_json_files_hold_for_any_file_name(tmp_path):
    """test.py --metrics on images named with '#', '%', '?', a space and non-ASCII letters, one too small for NIQE:
    every src and href of the results page names its file once URL-decoded, and metrics.json and train_opt.json are
    strict JSON (null, never NaN or Infinity)."""
    names = ['hash#1', 'pct%41', 'what?', 'two words', 'nuit étoilée']
    data = str(tmp_path / 'data')
    for i, stem in enumerate(names):
        write_image(os.path.join(data, 'testA', stem + '.png'), size=(20, 16), seed=i)
    write_image(os.path.join(data, 'testB', names[0] + '.png'), size=(20, 16), seed=9)
    folder = save_tiny_checkpoint(tmp_path)
    results = str(tmp_path / 'results')
    test = run_script('test.py', '--dataroot', data, '--name', 'tiny', '--checkpoints_dir', str(tmp_path / 'saves'),
                      *TINY, '--preprocess', 'none', '--results_dir', results, '--metrics')
    assert test.returncode == 0, test.stderr[-2000:]
    page = os.path.join(results, 'tiny', 'test_latest', 'index.html')
    refs = referenced_files_exist(page)
    assert {'images/%s_fake_B.png' % stem for stem in names} <= set(refs)
    with open(os.path.join(results, 'tiny', 'test_latest', 'metrics.json')) as f:
        summary = json.loads(f.read(), parse_constant=no_constant)
    assert summary['mean']['niqe'] is None and all(row['niqe'] is None for row in summary['per_image'])
    with open(os.path.join(folder, 'train_opt.json')) as f:
        options = json.loads(f.read(), parse_constant=no_constant)
    assert options['max_dataset_size'] is None


def test_test_py_builds_the_architecture_the_run_recorded(tmp_path, capsys):
    """A --ngf 8 run tested without --ngf: the networks are built as recorded (train_opt.json, else the official
    train_opt.txt), said in one line; a flag given on the command line still wins."""
    import test as test_script
    folder = save_tiny_checkpoint(tmp_path)
    make_dataset_folders(str(tmp_path / 'data'))
    argv = ['--dataroot', str(tmp_path / 'data'), '--name', 'tiny', '--checkpoints_dir', str(tmp_path / 'saves'),
            '--gpu_ids', '-1', '--preprocess', 'none']
    for record in ('train_opt.json', 'train_opt.txt'):
        test_script.main(argv + ['--results_dir', str(tmp_path / record)])
        assert 'architecture recorded in %s: ngf 8 (flags given on the command line win)' % folder in \
            capsys.readouterr().out
        assert os.path.isfile(tmp_path / record / 'tiny' / 'test_latest' / 'images' / 'img0_fake_B.png')
        if record == 'train_opt.json':
            os.remove(os.path.join(folder, record))  # the official code writes only the text file
    with pytest.raises(SystemExit, match=r'has shape \(8, 6, 7, 7\) in the file but \(16, 6, 7, 7\)'):
        test_script.main(argv + ['--results_dir', str(tmp_path / 'given'), '--ngf', '16'])


def help_of(options):
    options.gather_options(['--dataroot', 'x'])
    return options.parser.format_help()


def test_help_groups_the_flags_and_shows_examples():
    from options.base_options import GROUPS
    train, test = help_of(TrainOptions()), help_of(TestOptions())
    headings = [title + ':' for title in GROUPS]
    assert [train.index(h) for h in headings] == sorted(train.index(h) for h in headings)  # all, in order
    for text, script in ((train, 'train.py'), (test, 'test.py')):
        assert text.startswith('usage: ') and len(text.split('\n\n')[0].splitlines()) == 1  # a short usage line
        assert 'examples:\n  python %s --dataroot' % script in text and text.count('\n  python %s' % script) >= 2
        entries = re.split(r'\n  (?=-)', text)
        assert not [e for e in entries if e.count('(default') > 1 or '(default: None)' in e or
                    '(default: False)' in e]
    assert '59456' in train and "official code's default, 59456, shows them rarely" in ' '.join(train.split())
    for flag in ('--ndf', '--netD', '--n_layers_D', '--init_type', '--no_flip', '--load_size', '--crop_size'):
        assert flag + ' ' in train and flag not in test, flag
    assert 'trainA' not in test and 'training (' not in test
    assert 'best (the best validation score)' in ' '.join(test.split())
    assert TestOptions().parse(['--dataroot', 'x', '--ndf', '32', '--no_flip']).ndf == 32  # official commands work
