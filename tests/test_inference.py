"""The one way into inference (models/inference.py): test.py, load_enhancer and validation enhance alike, and
--tile follows the networks' own description of their layers."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

import test as test_script
from conftest import build_model, train_options
from helpers import image_pair, make_test_options, save_tiny_checkpoint
from enhancer import load_enhancer
from models.generators import ResnetBlock
from models.in_memory import ONE_PASS, InMemory
from models.inference import Enhancer, ImageEnhancer
from models.networks import get_norm_layer
from training.validation import Validator


def test_test_py_load_enhancer_and_validation_give_the_same_output(tmp_path):
    folder = save_tiny_checkpoint(tmp_path)
    photo = image_pair(3, (37, 53))[1]  # padded to 40 x 56 for the networks
    data = tmp_path / 'data'
    os.makedirs(data / 'testA')
    Image.fromarray(photo).save(data / 'testA' / 'p.png')
    outputs = {}
    for tile in ('0', '8'):
        results = tmp_path / ('results' + tile)
        test_script.main(['--dataroot', str(data), '--name', 'tiny', '--checkpoints_dir', str(tmp_path / 'saves'),
                          '--results_dir', str(results), '--gpu_ids', '-1', '--ngf', '8', '--preprocess', 'none',
                          '--tile', tile])
        written = np.asarray(Image.open(results / 'tiny' / 'test_latest' / 'images' / 'p_fake_B.png'))
        enhancer = load_enhancer(folder, tile=int(tile))
        assert np.array_equal(enhancer(photo), written), tile
        outputs[tile] = written
    assert outputs['8'].shape == photo.shape and np.abs(outputs['8'].astype(int) - outputs['0']).max() <= 1

    opt = train_options(tmp_path, '--ngf', '8', '--val_dataroot', str(data))
    run = tmp_path / 'run'
    Validator(opt, str(run))(load_enhancer(folder).model, 1, 0)
    sample = np.asarray(Image.open(run / 'web' / 'images' / 'val_epoch001_iter00000000_p.png'))
    assert np.array_equal(sample, outputs['0'])


def test_tile_follows_networks_with_one_resnet_block_more(tmp_path):
    torch.manual_seed(0)
    model = build_model(make_test_options(tmp_path, '--ngf', '8'))
    norm = get_norm_layer('instance')
    model.netG_A.model.insert(10, ResnetBlock(32, norm, False, True))  # after the two downsampling convolutions
    model.netPre.model.insert(10, ResnetBlock(32, norm, False, True))
    model.netH.model.insert(4, ResnetBlock(8, norm, False, True))  # after the stem
    image = torch.rand(1, 3, 21, 30) * 2 - 1
    in_memory = Enhancer(model).tensor(image)
    tiled = Enhancer(model, tile=8).tensor(image)
    assert tiled.shape == in_memory.shape == image.shape and (tiled - in_memory).abs().max() < 1e-4


def test_step_follows_every_layer_and_band_and_can_stop_the_computation(tmp_path):
    """enhance(step=...) calls step after each layer of a sequence and each band of rows, in memory and out of core
    (the web demo stops a job whose page closed there); the result is unchanged, and what step raises stops it."""
    torch.manual_seed(0)
    model = build_model(make_test_options(tmp_path, '--ngf', '8'))
    image = torch.rand(1, 3, 20, 24) * 2 - 1
    expected = model.inference.enhance(image).fake_B

    def steps(**where):
        calls = []
        with torch.no_grad():
            out = model.inference.enhance(image, step=lambda: calls.append(1), **where).fake_B
        assert (out - expected).abs().max() < 1e-4, where
        return len(calls)

    layers = steps(ops=ONE_PASS)
    assert steps(ops=InMemory(24 * 5)) == layers + 4 and steps(ops=InMemory(24 * 3)) == layers + 7  # decoder bands
    assert steps(tile=16) > layers and steps(tile=8) > steps(tile=16)

    def stop():
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
    for where in ({}, {'tile': 8}):
        calls = []
        with pytest.raises(KeyboardInterrupt), torch.no_grad():
            model.inference.enhance(image, step=stop, **where)
        assert len(calls) == 3, where


class Identity(ImageEnhancer):
    """A backend that hands back its input, to see what as_batch makes of an image."""

    def tensor(self, batch):
        return batch


def test_pil_images_of_every_mode_come_in_as_8_bit_rgb():
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8))
    for image in (rgb.convert('P'), rgb.convert('CMYK'), rgb.convert('L'), rgb.convert('RGBA'), rgb.convert('LA')):
        assert (np.asarray(Identity()(image)) == np.asarray(image.convert('RGB'))).all(), image.mode
    deep = rng.integers(0, 65536, (6, 5), dtype=np.uint16)  # 16-bit greyscale: scaled to 8 bits, not clipped
    expected = np.repeat(np.round(deep / 65535 * 255).astype(np.uint8)[..., None], 3, -1)
    assert (np.asarray(Identity()(Image.fromarray(deep))) == expected).all()


def test_arrays_and_tensors_come_back_as_what_they_were():
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, (5, 4), dtype=np.uint8)
    assert (Identity()(grey) == np.repeat(grey[..., None], 3, -1)).all()  # greyscale: three equal channels
    rgba = rng.integers(0, 256, (5, 4, 4), dtype=np.uint8)
    assert (Identity()(rgba) == rgba[..., :3]).all()  # alpha dropped
    frames = rng.integers(0, 256, (2, 5, 4, 3), dtype=np.uint8)
    assert (Identity()(frames) == frames).all() and Identity()(frames[0]).shape == (5, 4, 3)
    for image in (torch.rand(3, 5, 4, dtype=torch.float64), torch.rand(2, 3, 5, 4)):
        back = Identity()(image)
        assert back.shape == image.shape and back.dtype == image.dtype and torch.allclose(back, image, atol=1e-6)
    with pytest.raises(TypeError, match=r'^numpy images must be uint8 \(H, W\), \(H, W, 3\) or \(N, H, W, 3\), not '
                                        r'float32$'):
        Identity()(grey.astype(np.float32))
    with pytest.raises(TypeError, match='^expected a PIL image, a uint8 numpy array or a tensor in \\[0, 1\\], not '
                                        'list$'):
        Identity()([grey])
