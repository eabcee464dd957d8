"""Evaluation and data tools: metrics against scikit-image, lpips and a NIQE reference; evaluate.py on result
folders; test.py --metrics; prepare_dataset.py; enhance.py and load_enhancer."""
import csv
import html.parser
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from conftest import ROOT
from helpers import (TINY, fake_alexnet, image_pair, load_script, make_dataset_folders, make_pairs,
                     one_line_error, referenced_files_exist, refused, run_script, save_tiny_checkpoint,
                     write_image)
from metrics import scores as metrics
from metrics.evaluation import column_means, evaluate
from models.nerco import Enhanced, NeRCoInference
from util.util import UserError

REAL_LOWLIGHT = os.path.join(os.path.dirname(ROOT), 'shared', 'real_lowlight')


@pytest.mark.parametrize('seed', range(3))
def test_psnr_and_ssim_equal_scikit_image(seed):
    output, truth = image_pair(seed)
    assert abs(metrics.psnr(output, truth) - peak_signal_noise_ratio(truth, output, data_range=255)) < 1e-6
    gaussian = structural_similarity(output, truth, channel_axis=-1, data_range=255, gaussian_weights=True,
                                     sigma=1.5, use_sample_covariance=False)
    uniform = structural_similarity(output, truth, channel_axis=-1, data_range=255)  # scikit-image's defaults
    assert abs(metrics.ssim(output, truth) - gaussian) < 1e-6
    assert abs(metrics.ssim(output, truth, 'uniform') - uniform) < 1e-6
    assert abs(gaussian - uniform) > 1e-4
    assert metrics.psnr(truth, truth) == float('inf') and metrics.ssim(truth, truth) == pytest.approx(1.0)


@pytest.mark.skipif(not os.path.isdir(REAL_LOWLIGHT), reason='../shared/real_lowlight is absent')
def test_niqe_matches_the_reference_implementation_on_real_photos():
    with open(os.path.join(ROOT, 'tests', 'fixtures', 'niqe_reference.json')) as f:
        reference = json.load(f)['niqe']
    niqe = metrics.NIQE()
    for name, expected in reference.items():
        image = np.asarray(Image.open(os.path.join(REAL_LOWLIGHT, name)).convert('RGB'))
        assert abs(niqe(image) - expected) < 1e-3, name


def test_niqe_matches_the_reference_implementation_on_scikit_image_photos():
    with open(os.path.join(ROOT, 'tests', 'fixtures', 'niqe_reference.json')) as f:
        reference = json.load(f)['niqe_skimage']
    niqe = metrics.NIQE()
    for name, expected in reference.items():
        assert abs(niqe(getattr(skdata, name)()) - expected) < 1e-3, name


def test_niqe_rises_for_blurred_and_noised_images():
    photo = skdata.astronaut()
    blurred = ndimage.gaussian_filter(photo.astype(float), (2, 2, 0)).round().astype(np.uint8)
    noised = np.clip(photo + np.random.default_rng(0).normal(0, 20, photo.shape), 0, 255).astype(np.uint8)
    niqe = metrics.NIQE()
    clean = niqe(photo)
    assert np.isfinite(clean)
    assert niqe(blurred) > clean + 1 and niqe(noised) > clean + 1
    assert np.isnan(niqe(photo[:100, :150]))  # one 96x96 block is not enough for a covariance


def test_imresize_keeps_constants_and_halves_a_ramp_like_matlab():
    assert np.allclose(metrics.imresize(np.full((8, 12), 7.0), 0.5), 7.0)
    ramp = np.tile(np.arange(16.0), (4, 1))
    # MATLAB: imresize(repmat(0:15, 4, 1), 0.5) = 0.5:2:14.5 away from the borders
    assert np.allclose(metrics.imresize(ramp, 0.5)[0, 2:6], [4.5, 6.5, 8.5, 10.5])
    assert metrics.imresize(np.zeros((30, 40)), shape=(7, 9)).shape == (7, 9)


def test_loe_counts_lightness_order_changes():
    source = skdata.coffee()
    brighter = (255 * (source / 255) ** 0.5).round().astype(np.uint8)  # monotonic: order kept but for rounding
    assert metrics.loe(source, source) == 0
    assert metrics.loe(brighter, source) < 50
    assert metrics.loe(255 - source, source) > 1000


def test_lpips_column_equals_the_lpips_library(tmp_path, monkeypatch):
    import lpips
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    fake_alexnet(str(tmp_path / 'hub'))
    output, truth = image_pair(1, (64, 64))
    reference = lpips.LPIPS(net='alex', verbose=False)
    with torch.no_grad():
        expected = float(reference(torch.from_numpy(output).permute(2, 0, 1)[None].float() / 127.5 - 1,
                                   torch.from_numpy(truth).permute(2, 0, 1)[None].float() / 127.5 - 1))
    assert metrics.LPIPS()(output, truth) == pytest.approx(expected, abs=1e-6)
    assert metrics.LPIPS()(truth, truth) == pytest.approx(0, abs=1e-6)


@pytest.mark.skipif(not os.path.isfile(metrics.lpips_weights_path()),
                    reason='AlexNet weights %s are not on this machine' % metrics.ALEXNET_FILE)
def test_lpips_with_the_real_alexnet_weights():
    photo = skdata.astronaut()[:256, :256]
    lpips = metrics.LPIPS()
    blurred = ndimage.gaussian_filter(photo.astype(float), (1, 1, 0)).round().astype(np.uint8)
    worse = ndimage.gaussian_filter(photo.astype(float), (4, 4, 0)).round().astype(np.uint8)
    assert lpips(photo, photo) < 1e-6 < lpips(blurred, photo) < lpips(worse, photo)


def test_lpips_is_skipped_with_a_message_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'empty_hub'))
    with pytest.raises(FileNotFoundError) as error:
        metrics.LPIPS()
    expected = os.path.join(str(tmp_path / 'empty_hub'), 'checkpoints', metrics.ALEXNET_FILE)
    assert str(error.value) == 'LPIPS skipped: AlexNet weights not found; download %s to %s' % (metrics.ALEXNET_URL,
                                                                                               expected)


def write_results(folder, gt, n=2, size=(200, 210)):
    """A test.py-like result folder (images/<stem>_fake_B.png, <stem>_real_A.png, index.html) and ground truth."""
    os.makedirs(os.path.join(folder, 'images'))
    os.makedirs(gt)
    with open(os.path.join(folder, 'index.html'), 'w') as f:
        f.write('<html><body><h3>img0</h3></body></html>')
    for i in range(n):
        output, truth = image_pair(i, size)
        Image.fromarray(output).save(os.path.join(folder, 'images', 'img%d_fake_B.png' % i))
        Image.fromarray(truth // 4).save(os.path.join(folder, 'images', 'img%d_real_A.png' % i))
        Image.fromarray(truth).save(os.path.join(gt, 'img%d.png' % i))


def test_evaluate_writes_csv_json_and_one_table_on_the_page(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'empty_hub'))
    results, gt = str(tmp_path / 'test_latest'), str(tmp_path / 'gt')
    write_results(results, gt)
    summary = evaluate(results, gt, loe=True)
    assert 'LPIPS skipped' in capsys.readouterr().out
    with open(os.path.join(results, 'metrics.csv')) as f:
        rows = list(csv.DictReader(f))
    assert [row['image'] for row in rows] == ['img0_fake_B.png', 'img1_fake_B.png', 'mean']
    assert set(rows[0]) == {'image', 'psnr', 'ssim', 'niqe', 'loe'}
    output, truth = image_pair(0, (200, 210))
    assert float(rows[0]['psnr']) == pytest.approx(metrics.psnr(output, truth), abs=1e-5)
    assert float(rows[2]['psnr']) == pytest.approx(summary['mean']['psnr'], abs=1e-5)
    # The mean row against means recomputed here from the images themselves.
    pairs = [image_pair(i, (200, 210)) for i in range(2)]
    niqe = metrics.NIQE()
    expected = {'psnr': [metrics.psnr(o, t) for o, t in pairs], 'ssim': [metrics.ssim(o, t) for o, t in pairs],
                'niqe': [niqe(o) for o, _ in pairs], 'loe': [metrics.loe(o, t // 4) for o, t in pairs]}
    for column, values in expected.items():
        assert abs(values[0] - values[1]) > 1e-4, column
        assert float(rows[2][column]) == pytest.approx(np.mean(values), abs=1e-5), column
    with open(os.path.join(results, 'metrics.json')) as f:
        saved = json.load(f)
    assert saved['images'] == 2 and 'data range 255' in saved['notes'][0]
    evaluate(results, gt)
    with open(os.path.join(results, 'index.html')) as f:
        page = f.read()
    assert page.count('<div id="metrics">') == 1 and 'PSNR' in page and '<h3>img0</h3>' in page


def test_evaluate_without_ground_truth_gives_niqe_and_clear_errors(tmp_path):
    results, gt = str(tmp_path / 'out'), str(tmp_path / 'gt')
    write_results(results, gt)
    summary = evaluate(os.path.join(results, 'images'))
    assert list(summary['mean']) == ['niqe']
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(os.path.join(gt, 'img1.png'))
    result = run_script('scripts/evaluate.py', results, '--gt', gt, '--no_niqe')
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith('error: %s' % os.path.join(results, 'images',
                                                                                         'img1_fake_B.png'))
    assert 'same size' in result.stderr
    result = run_script('scripts/evaluate.py', str(tmp_path / 'nowhere'))
    assert result.returncode != 0 and 'folder not found' in result.stderr and 'Traceback' not in result.stderr


def test_test_script_with_metrics_scores_against_testB(tmp_path):
    data = make_dataset_folders(str(tmp_path / 'data'), size=(200, 196))  # NIQE needs 2x2 blocks of 96x96
    for i in range(2):
        Image.fromarray(image_pair(i, (196, 200))[1]).save(os.path.join(data, 'testA', 'img%d.png' % i))
    os.makedirs(os.path.join(data, 'testB'))
    Image.fromarray(image_pair(0, (196, 200))[1]).save(os.path.join(data, 'testB', 'img0.png'))
    save_tiny_checkpoint(tmp_path)
    result = run_script('test.py', '--dataroot', data, '--name', 'tiny', '--checkpoints_dir', str(tmp_path / 'saves'),
                        '--results_dir', str(tmp_path / 'results'), *TINY, '--preprocess', 'none', '--metrics')
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'mean over 2 image(s): PSNR' in result.stdout and 'without ground truth' in result.stdout
    results = tmp_path / 'results' / 'tiny' / 'test_latest'
    with open(results / 'index.html') as f:
        assert '<div id="metrics">' in f.read()
    with open(results / 'metrics.csv') as f:
        rows = {row['image']: row for row in csv.DictReader(f)}
    outputs = [np.asarray(Image.open(results / 'images' / ('img%d_fake_B.png' % i))) for i in range(2)]
    truth = np.asarray(Image.open(os.path.join(data, 'testB', 'img0.png')))
    assert float(rows['img0_fake_B.png']['psnr']) == pytest.approx(metrics.psnr(outputs[0], truth), abs=1e-5)
    assert float(rows['img0_fake_B.png']['ssim']) == pytest.approx(metrics.ssim(outputs[0], truth), abs=1e-5)
    assert rows['img1_fake_B.png']['psnr'] == ''
    niqe = [metrics.NIQE()(output) for output in outputs]
    assert not np.isnan(niqe).any()
    assert float(rows['img1_fake_B.png']['niqe']) == pytest.approx(niqe[1], abs=1e-5)
    assert float(rows['mean']['niqe']) == pytest.approx(np.mean(niqe), abs=1e-5)


def test_prepare_dataset_lol_and_lsrw_layouts(tmp_path):
    from scripts.prepare_dataset import prepare
    lol = str(tmp_path / 'LOL')
    make_pairs(lol, ['our485'], ['2.png', '5.png', '7.png'])
    make_pairs(lol, ['eval15'], ['1.png'])
    counts = prepare(lol, str(tmp_path / 'lol_data'), 'lol')
    assert counts == {'trainA': 3, 'trainB': 3, 'testA': 1, 'testB': 1}
    assert os.path.islink(tmp_path / 'lol_data' / 'testA' / '1.png')
    assert os.path.realpath(tmp_path / 'lol_data' / 'trainB' / '5.png') == os.path.join(lol, 'our485', 'high', '5.png')

    lsrw = str(tmp_path / 'LSRW')
    make_pairs(lsrw, ['Training data/Huawei', 'Training data/Nikon'], ['1.jpg', '2.jpg'])
    make_pairs(lsrw, ['Eval/Huawei', 'Eval/Nikon'], ['3.jpg'])
    counts = prepare(lsrw, str(tmp_path / 'lsrw_data'), 'lsrw', copy=True)
    assert counts == {'trainA': 4, 'trainB': 4, 'testA': 2, 'testB': 2}
    assert sorted(os.listdir(tmp_path / 'lsrw_data' / 'testB')) == ['Huawei_3.jpg', 'Nikon_3.jpg']
    assert not os.path.islink(tmp_path / 'lsrw_data' / 'trainA' / 'Nikon_2.jpg')

    result = run_script('scripts/prepare_dataset.py', '--lol', lol + '/our485', '--out', str(tmp_path / 'x'))
    assert result.returncode != 0 and 'found train split only' in result.stderr and 'eval15/low' in result.stderr
    assert not os.path.exists(tmp_path / 'x')
    result = run_script('scripts/prepare_dataset.py', '--lol', lol, '--out', str(tmp_path / 'lol_data'))
    assert result.returncode != 0 and 'already holds files' in result.stderr


def test_prepare_dataset_splits_by_the_folders_under_the_root_only(tmp_path):
    """A data set kept under a folder named like a split (~/testing/LOL, /data/evaluation/) still has a training
    split: only the folders below the root decide."""
    from scripts.prepare_dataset import prepare
    lol = str(tmp_path / 'testing' / 'evaluations' / 'LOL')
    make_pairs(lol, ['our485'], ['2.png', '5.png'])
    make_pairs(lol, ['eval15'], ['1.png'])
    assert prepare(lol, str(tmp_path / 'data'), 'lol') == {'trainA': 2, 'trainB': 2, 'testA': 1, 'testB': 1}


def lol_v2(root, numbers, low='low%05d.png', high='normal%05d.png'):
    """LOL-v2 Real_captured's layout: Train/Low/low00001.png with Train/Normal/normal00001.png, Test likewise."""
    for split, numbers_of_split in zip(('Train', 'Test'), numbers):
        for side, pattern in (('Low', low), ('Normal', high)):
            for n in numbers_of_split:
                write_image(os.path.join(root, split, side, pattern % n), size=(24, 20), seed=n)
    return root


def test_prepare_dataset_pairs_lol_v2_by_number_and_test_py_finds_the_ground_truth(tmp_path):
    from scripts.prepare_dataset import prepare
    data = str(tmp_path / 'data')
    counts = prepare(lol_v2(str(tmp_path / 'LOL-v2'), ([1, 2, 3], [690, 691])), data, 'lol')
    assert counts == {'trainA': 3, 'trainB': 3, 'testA': 2, 'testB': 2}
    assert sorted(os.listdir(os.path.join(data, 'testB'))) == ['low00690.png', 'low00691.png']
    assert os.path.realpath(os.path.join(data, 'testB', 'low00690.png')) == str(
        tmp_path / 'LOL-v2' / 'Test' / 'Normal' / 'normal00690.png')
    save_tiny_checkpoint(tmp_path)
    test = run_script('test.py', '--dataroot', data, '--name', 'tiny', '--checkpoints_dir', str(tmp_path / 'saves'),
                      '--results_dir', str(tmp_path / 'results'), *TINY, '--preprocess', 'none', '--metrics')
    assert test.returncode == 0 and 'mean over 2 image(s): PSNR' in test.stdout, test.stderr[-2000:]


def test_ground_truth_that_pairs_with_nothing_is_named_in_one_line(tmp_path):
    bad = lol_v2(str(tmp_path / 'bad'), ([1, 2], [7]), high='normal_%d_x.png')
    os.remove(os.path.join(bad, 'Train', 'Low', 'low00002.png'))
    result = run_script('scripts/prepare_dataset.py', '--lol', bad, '--out', str(tmp_path / 'x'))
    assert 'normal_2_x.png pairs with no image of' in one_line_error(result)
    assert not os.path.exists(tmp_path / 'x')

    data = make_dataset_folders(str(tmp_path / 'data'))
    write_image(os.path.join(data, 'testB', 'normal0.png'))
    save_tiny_checkpoint(tmp_path)
    test = run_script('test.py', '--dataroot', data, '--name', 'tiny', '--checkpoints_dir', str(tmp_path / 'saves'),
                      '--results_dir', str(tmp_path / 'results'), *TINY, '--preprocess', 'none', '--metrics')
    assert test.returncode == 0, test.stderr[-2000:]
    warning, = [line for line in test.stderr.splitlines() if line.startswith('warning: ') and 'testB' in line]
    assert 'testB holds 1 image(s), none named like an input (e.g. img0, normal0): no PSNR, SSIM or LPIPS' in warning


def test_load_enhancer_accepts_pil_numpy_and_tensors_and_matches_test_py(tmp_path):
    from enhancer import load_enhancer
    folder = save_tiny_checkpoint(tmp_path)
    enhance = load_enhancer(folder)
    photo = image_pair(3, (37, 53))[1]
    out = enhance(photo)
    assert out.dtype == np.uint8 and out.shape == photo.shape
    pil = enhance(Image.fromarray(photo))
    assert isinstance(pil, Image.Image) and np.array_equal(np.asarray(pil), out)
    tensor = enhance(torch.from_numpy(photo).permute(2, 0, 1).float() / 255)
    assert tensor.shape == (3, 37, 53) and 0 <= tensor.min() and tensor.max() <= 1
    assert np.abs(np.round(tensor.permute(1, 2, 0).numpy() * 255) - out).max() <= 1

    data = str(tmp_path / 'data')
    os.makedirs(os.path.join(data, 'testA'))
    Image.fromarray(photo).save(os.path.join(data, 'testA', 'p.png'))
    result = run_script('test.py', '--dataroot', data, '--name', 'tiny', '--checkpoints_dir', str(tmp_path / 'saves'),
                        '--results_dir', str(tmp_path / 'results'), *TINY, '--preprocess', 'none')
    assert result.returncode == 0, result.stderr[-2000:]
    written = np.asarray(Image.open(tmp_path / 'results' / 'tiny' / 'test_latest' / 'images' / 'p_fake_B.png'))
    assert np.array_equal(written, out)
    result = run_script('test.py', '--dataroot', data, '--name', 'tiny', '--checkpoints_dir', str(tmp_path / 'saves'),
                        '--results_dir', str(tmp_path / 'tiled'), *TINY, '--preprocess', 'none', '--tile', '8')
    assert result.returncode == 0, result.stderr[-2000:]
    tiled = np.asarray(Image.open(tmp_path / 'tiled' / 'tiny' / 'test_latest' / 'images' / 'p_fake_B.png'))
    assert np.abs(tiled.astype(int) - out).max() <= 1
    assert np.abs(load_enhancer(folder, tile=8)(photo).astype(int) - out).max() <= 1

    result = run_script('scripts/enhance.py', os.path.join(data, 'testA'), '--checkpoints', folder, '--out',
                        str(tmp_path / 'enhanced'))
    assert result.returncode == 0, result.stderr[-2000:]
    assert np.array_equal(np.asarray(Image.open(tmp_path / 'enhanced' / 'p.png')), out)
    result = run_script('scripts/enhance.py', 'missing.png', '--checkpoints', folder, '--out', str(tmp_path / 'e'))
    assert result.returncode != 0 and result.stderr.strip() == 'error: missing.png: no such file or folder'


def test_enhance_py_skips_an_image_too_large_for_the_gpu_and_stops_on_a_user_error(tmp_path, monkeypatch, capsys):
    script = load_script('scripts/enhance.py')

    def small_gpu(self, real_A, tile=0, ops=None, step=None):
        if real_A.shape[-1] > 30:
            raise torch.cuda.OutOfMemoryError('CUDA out of memory')
        return Enhanced(*(real_A,) * 4)

    monkeypatch.setattr(NeRCoInference, 'enhance', small_gpu)
    checkpoints = save_tiny_checkpoint(tmp_path)
    folder, out = tmp_path / 'photos', tmp_path / 'enhanced'
    write_image(str(folder / 'small.png'), (20, 12))
    write_image(str(folder / 'huge.png'), (36, 28))
    with pytest.raises(SystemExit) as exit_info:
        script.main([str(folder), '--checkpoints', checkpoints, '--out', str(out)])
    assert str(exit_info.value) == 'error: 1 image(s) could not be enhanced and were skipped'
    assert 'skipped %s: out of GPU memory at 36x28' % (folder / 'huge.png') in capsys.readouterr().err
    assert os.listdir(out) == ['small.png']

    def refuse(self, real_A, tile=0, ops=None, step=None):
        raise UserError('--tile supports the ResNet generators only')

    monkeypatch.setattr(NeRCoInference, 'enhance', refuse)
    with pytest.raises(SystemExit) as exit_info:
        script.main([str(folder), '--checkpoints', checkpoints, '--out', str(out), '--overwrite'])
    assert str(exit_info.value) == 'error: --tile supports the ResNet generators only'


def test_niqe_on_the_luma_matches_basicsr():
    """--niqe_channel y against BasicSR's calculate_niqe(convert_to='y'), which computes in float32: so does the
    luma path here (in float64 it would be 0.036 away on astronaut); gray and Y differ by 0.05 or more on most of
    them."""
    with open(os.path.join(ROOT, 'tests', 'fixtures', 'niqe_reference.json')) as f:
        reference = json.load(f)['niqe_y']
    luma, gray = metrics.NIQE('y'), metrics.NIQE('gray')
    checked = 0
    for name, expected in reference.items():
        if '.' in name:
            if not os.path.isdir(REAL_LOWLIGHT):
                continue
            image = np.asarray(Image.open(os.path.join(REAL_LOWLIGHT, name)).convert('RGB'))
        else:
            image = getattr(skdata, name)()
        assert abs(luma(image) - expected) < 1e-3, name
        checked += 1
    assert checked >= 3
    chelsea = skdata.chelsea()
    assert abs(luma(chelsea) - gray(chelsea)) > 0.05


def test_evaluate_gives_nan_for_images_too_small_and_finishes(tmp_path):
    results, gt = str(tmp_path / 'test_latest'), str(tmp_path / 'gt')
    write_results(results, gt)
    for name, size in (('mid', (64, 64)), ('tiny', (9, 13))):
        output, truth = image_pair(5, size)
        Image.fromarray(output).save(os.path.join(results, 'images', '%s_fake_B.png' % name))
        Image.fromarray(truth).save(os.path.join(gt, '%s.png' % name))
    result = run_script('scripts/evaluate.py', results, '--gt', gt, '--no_lpips')
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'warning: %s' % os.path.join(results, 'images', 'tiny_fake_B.png') in result.stderr
    assert 'NIQE is NaN for 2 image(s)' in result.stdout and 'SSIM is NaN for 1 image(s)' in result.stdout
    with open(os.path.join(results, 'metrics.csv')) as f:
        rows = {row['image']: row for row in csv.DictReader(f)}
    assert rows['tiny_fake_B.png']['ssim'] == 'nan' and rows['mid_fake_B.png']['niqe'] == 'nan'
    assert float(rows['mid_fake_B.png']['ssim']) > 0
    normal = [metrics.NIQE()(image_pair(i, (200, 210))[0]) for i in range(2)]
    assert float(rows['mean']['niqe']) == pytest.approx(np.mean(normal), abs=1e-5)


def test_evaluate_compares_several_folders_with_the_numbers_of_separate_calls(tmp_path):
    gt = str(tmp_path / 'gt')
    ours, theirs = str(tmp_path / 'ours' / 'test_latest'), str(tmp_path / 'theirs')
    write_results(ours, gt)
    os.makedirs(theirs)
    for i in range(2):
        output, _ = image_pair(i + 7, (200, 210))
        Image.fromarray(output).save(os.path.join(theirs, 'img%d.png' % i))
    separate, per_image = {}, {}
    for name, folder in (('ours/test_latest', ours), ('theirs', theirs)):
        assert run_script('scripts/evaluate.py', folder, '--gt', gt, '--no_lpips').returncode == 0
        with open(os.path.join(folder, 'metrics.csv')) as f:
            rows = list(csv.DictReader(f))
        separate[name] = [row for row in rows if row['image'] == 'mean'][0]
        per_image[name] = {os.path.splitext(row['image'])[0].replace('_fake_B', ''): row for row in rows
                           if row['image'] != 'mean'}
    out = str(tmp_path / 'comparison')
    result = run_script('scripts/evaluate.py', ours, theirs, '--gt', gt, '--no_lpips', '--out', out)
    assert result.returncode == 0, result.stderr[-2000:]
    with open(os.path.join(out, 'comparison.csv')) as f:
        table = list(csv.DictReader(f))
    assert [row['method'] for row in table] == ['ours/test_latest', 'theirs']
    for row in table:
        mean = separate[row['method']]
        assert row['psnr'] == '%.4f' % float(mean['psnr'])
        assert row['niqe (lower is better)'] == '%.4f' % float(mean['niqe'])
    assert table[0]['psnr'] != table[1]['psnr']
    with open(os.path.join(out, 'comparison.md')) as f:
        assert f.read().count('\n') == 4
    refs = referenced_files_exist(os.path.join(out, 'index.html'))
    assert len(refs) == 4
    captions = Captions()
    with open(os.path.join(out, 'index.html')) as f:
        captions.feed(f.read())
    assert len(captions.found) == 4
    for stem, name, values in captions.found:  # each caption holds its own folder's numbers for its image
        assert values['PSNR'] == '%.4f' % float(per_image[name][stem]['psnr']), (stem, name)
        assert values['NIQE'] == '%.4f' % float(per_image[name][stem]['niqe']), (stem, name)


class Captions(html.parser.HTMLParser):
    """(image stem, folder, {metric: value}) of each caption of a comparison page, under its image's header."""

    def __init__(self):
        super().__init__()
        self.found, self.stem, self.tag = [], None, None

    def handle_starttag(self, tag, attrs):
        self.tag = tag

    def handle_endtag(self, tag):
        self.tag = None

    def handle_data(self, data):
        if self.tag == 'h3':
            self.stem = data.strip()
        elif self.tag == 'p' and ': PSNR ' in data:
            name, _, numbers = data.partition(': ')
            self.found.append((self.stem, name, dict(item.split(' ') for item in numbers.split(', '))))


def test_means_leave_nan_out_and_a_column_of_nan_stays_nan_without_a_warning(recwarn):
    rows = [{'psnr': 20.0, 'niqe': float('nan')}, {'psnr': float('nan'), 'niqe': float('nan')}, {'psnr': 30.0}]
    means = column_means(rows, ['psnr', 'niqe', 'lpips'])
    assert means['psnr'] == 25.0 and np.isnan(means['niqe']) and 'lpips' not in means
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_ground_truth_that_pairs_two_ways_is_refused_naming_both_files(tmp_path, capsys):
    """gt/img0.png and gt/img0.jpg: which is the ground truth of img0? (PSNR 8.91 against one, 7.76 against the
    other): refused, not picked silently (validation's testB: test_validation.py)."""
    results, gt = str(tmp_path / 'out'), str(tmp_path / 'gt')
    write_results(results, gt, size=(40, 36))
    Image.open(os.path.join(gt, 'img0.png')).save(os.path.join(gt, 'img0.jpg'))
    main = load_script('scripts/evaluate.py').main
    line = refused(capsys, main, results, '--gt', gt, '--no_lpips', '--no_niqe')
    assert line == 'error: ground truth %s: img0.jpg and img0.png both pair with the images named img0; keep the ' \
        'one that is meant' % gt
    os.remove(os.path.join(gt, 'img0.jpg'))
    assert main([results, '--gt', gt, '--no_lpips', '--no_niqe']) == 0
    # enhanced images that share a stem (a.png, a.jpg in a plain folder): one used to be dropped from the scores
    plain = tmp_path / 'plain'
    for name in ('img0.png', 'img0.jpg', 'img1.png'):
        write_image(str(plain / name), (36, 40), seed=len(name))
    for flags in (['--gt', gt, '--no_niqe'], []):
        line = refused(capsys, main, str(plain), *flags, '--no_lpips')
        assert line == 'error: enhanced images %s: img0.jpg and img0.png both pair with the images named img0; keep ' \
            'the one that is meant' % plain, flags
    os.remove(plain / 'img0.jpg')
    assert main([str(plain), '--gt', gt, '--no_lpips', '--no_niqe']) == 0
    capsys.readouterr()
    os.rename(plain / 'img1.png', plain / 'img1_fake_B.png')  # now read as test.py's outputs: the others are said
    assert main([str(plain), '--gt', gt, '--no_lpips', '--no_niqe']) == 0
    assert "note: %s: scoring its 1 image(s) named <stem>_fake_B (test.py's outputs); its 1 other image(s) are left " \
        'out' % plain in capsys.readouterr().err
