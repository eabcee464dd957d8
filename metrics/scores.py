"""Image-quality measures for enhanced photos: PSNR, SSIM, LPIPS (with a reference), NIQE and LOE (without).

Images are RGB uint8 arrays (H, W, 3). NIQE and LOE follow the authors' MATLAB code (Mittal et al. 2013,
Wang et al. 2013), including MATLAB's rgb2gray and its bicubic, antialiased imresize.
"""
import os
import warnings

import numpy as np
import torch
from scipy import ndimage
from scipy.special import gammaln
from skimage.metrics import structural_similarity

from util.images import from_uint8

SSIM_MODES = {
    # Wang et al.'s parameters: an 11x11 Gaussian window (sigma 1.5), population covariances.
    'gaussian': dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False),
    # scikit-image's defaults (compare_ssim in older LLIE code): a 7x7 uniform window, sample covariances.
    'uniform': dict(gaussian_weights=False, win_size=7, use_sample_covariance=True),
}
SSIM_WINDOW = {'gaussian': 11, 'uniform': 7}
NIQE_PARAMS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'niqe_pristine.npz')
NIQE_BLOCK = 96
ALEXNET_FILE = 'alexnet-owt-7be5be79.pth'
ALEXNET_URL = 'https://download.pytorch.org/models/' + ALEXNET_FILE


def psnr(output, reference):
    """Peak signal-to-noise ratio in dB over all pixels and channels, data range 255."""
    mse = np.mean((output.astype(np.float64) - reference.astype(np.float64)) ** 2)
    return float('inf') if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def ssim(output, reference, mode='gaussian'):
    """Structural similarity of RGB images, averaged over the channels, data range 255 (SSIM_MODES); NaN for an
    image smaller than the window (11 pixels for gaussian, 7 for uniform)."""
    if min(output.shape[:2]) < SSIM_WINDOW[mode]:
        return float('nan')
    return float(structural_similarity(output, reference, channel_axis=-1, data_range=255, **SSIM_MODES[mode]))


def rgb2gray(image):
    """MATLAB's rgb2gray of a uint8 image: luma weights, rounded."""
    if image.ndim == 2:
        return image.astype(np.float64)
    weights = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
    return np.round(image[..., :3].astype(np.float64) @ weights)


def rgb2y(image):
    """The luma Y of ITU-R BT.601 in [16, 235] of a uint8 image, rounded, computed step by step as BasicSR's
    to_y_channel and calculate_niqe do (in float32, which decides the rounding of a few pixels)."""
    if image.ndim == 2:
        return image.astype(np.float64)
    bgr = image[..., 2::-1].astype(np.float32) / np.float32(255.0)
    y = (bgr @ np.array([24.966, 128.553, 65.481]) + 16.0) / 255.0
    return np.round(y.astype(np.float32) * np.float32(255.0)).astype(np.float64)


# What NIQE sees and the precision it computes in: MATLAB's gray in float64 as MATLAB computes, or the luma Y in
# float32 as BasicSR's calculate_niqe computes (its shape search on a 0.001 grid turns rounding into jumps of 0.01).
NIQE_CHANNELS = {'gray': (rgb2gray, np.float64), 'y': (rgb2y, np.float32)}


def _cubic(x):
    x = np.abs(x)
    return np.where(x <= 1, 1.5 * x ** 3 - 2.5 * x ** 2 + 1,
                    np.where(x <= 2, -0.5 * x ** 3 + 2.5 * x ** 2 - 4 * x + 2, 0.0))


def _resize_matrix(n_in, n_out, scale):
    """MATLAB imresize's bicubic weights along one axis as an (n_out, n_in) matrix: the kernel widened by
    1/scale when shrinking (antialiasing), rows normalised, symmetric extension at the borders."""
    stretch = min(scale, 1.0)
    width = 4.0 / stretch
    centre = np.arange(1, n_out + 1) / scale + 0.5 * (1 - 1 / scale)
    taps = np.floor(centre - width / 2)[:, None] + np.arange(int(np.ceil(width)) + 2)
    weights = stretch * _cubic(stretch * (centre[:, None] - taps))
    weights /= weights.sum(1, keepdims=True)
    mirror = np.concatenate([np.arange(n_in), np.arange(n_in)[::-1]])
    columns = mirror[(taps.astype(int) - 1) % (2 * n_in)]
    matrix = np.zeros((n_out, n_in))
    np.add.at(matrix, (np.repeat(np.arange(n_out), taps.shape[1]), columns.ravel()), weights.ravel())
    return matrix


def imresize(image, scale=None, shape=None):
    """MATLAB's imresize(image, scale) or imresize(image, [rows cols]) for a 2-D float array (bicubic), in the
    array's precision."""
    h, w = image.shape
    if shape is None:
        shape = (int(np.ceil(h * scale)), int(np.ceil(w * scale)))
        scales = (scale, scale)
    else:
        scales = (shape[0] / h, shape[1] / w)
    rows = _resize_matrix(h, shape[0], scales[0]).astype(image.dtype)
    cols = _resize_matrix(w, shape[1], scales[1]).astype(image.dtype)
    return rows @ image @ cols.T


class NIQE:
    """Natural Image Quality Evaluator (lower is better) against the pristine model of the MATLAB release
    (mu_prisparam, cov_prisparam of niqe_release/modelparameters.mat), with 96x96 blocks and no overlap."""

    def __init__(self, channel='gray', params=NIQE_PARAMS):
        self.channel, self.dtype = NIQE_CHANNELS[channel]
        with np.load(params) as saved:
            self.mu, self.cov = saved['mu_pris_param'].ravel(), saved['cov_pris_param']
        self.shapes = np.arange(0.2, 10.001, 0.001)
        self.ratios = np.exp(2 * gammaln(2 / self.shapes) - gammaln(1 / self.shapes) - gammaln(3 / self.shapes))
        x = np.arange(-3, 4)
        window = np.exp(-(x[:, None] ** 2 + x[None] ** 2) / (2 * (7 / 6) ** 2))
        self.window = window / window.sum()

    def aggd(self, values):
        """Moment-matched asymmetric generalised Gaussian: shape alpha, left and right scales."""
        values = values.ravel()
        left = np.sqrt(np.mean(values[values < 0] ** 2)) if (values < 0).any() else np.nan
        right = np.sqrt(np.mean(values[values > 0] ** 2)) if (values > 0).any() else np.nan
        gamma_hat = left / right
        r_hat = np.mean(np.abs(values)) ** 2 / np.mean(values ** 2)
        r_norm = r_hat * (gamma_hat ** 3 + 1) * (gamma_hat + 1) / (gamma_hat ** 2 + 1) ** 2
        alpha = self.shapes[np.argmin((self.ratios - r_norm) ** 2)]
        spread = np.exp(0.5 * (gammaln(1 / alpha) - gammaln(3 / alpha)))
        return alpha, left * spread, right * spread

    def block_features(self, block):
        alpha, left, right = self.aggd(block)
        features = [alpha, (left + right) / 2]
        for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
            alpha, left, right = self.aggd(block * np.roll(block, shift, axis=(0, 1)))
            mean = (right - left) * np.exp(gammaln(2 / alpha) - gammaln(1 / alpha))
            features += [alpha, mean, left, right]
        return features

    def features(self, gray):
        """18 features per block at full and half resolution (36 per block)."""
        rows, cols = gray.shape[0] // NIQE_BLOCK, gray.shape[1] // NIQE_BLOCK
        image = gray[:rows * NIQE_BLOCK, :cols * NIQE_BLOCK].astype(self.dtype)
        per_scale = []
        for scale in (1, 2):
            mu = ndimage.correlate(image, self.window, mode='nearest')
            sigma = np.sqrt(np.abs(ndimage.correlate(image * image, self.window, mode='nearest') - mu * mu))
            mscn = (image - mu) / (sigma + 1)
            size = NIQE_BLOCK // scale
            per_scale.append([self.block_features(mscn[r * size:(r + 1) * size, c * size:(c + 1) * size])
                              for c in range(cols) for r in range(rows)])
            image = imresize(image / 255, 0.5) * 255
        return np.concatenate(np.array(per_scale), axis=1)

    def __call__(self, image):
        """NIQE of an RGB uint8 (or grayscale) image, on MATLAB's gray or on the luma Y (channel); NaN when it has
        fewer than two 96x96 blocks."""
        if (image.shape[0] // NIQE_BLOCK) * (image.shape[1] // NIQE_BLOCK) < 2:
            return float('nan')
        features = self.features(self.channel(image))
        complete = features[~np.isnan(features).any(1)]
        if len(complete) < 2:
            return float('nan')
        difference = self.mu - np.nanmean(features, axis=0)
        spread = np.linalg.pinv((self.cov + np.cov(complete, rowvar=False)) / 2)
        return float(np.sqrt(difference @ spread @ difference))


def loe(output, source):
    """Lightness order error (Wang et al. 2013, lower is better): on lightness max(R, G, B) downsampled to 50
    pixels along the shorter side, how many pixel pairs change their order between source and output."""
    h, w = source.shape[:2]
    r = 50 / min(h, w)
    shape = (int(np.floor(h * r + 0.5)), int(np.floor(w * r + 0.5)))
    before = imresize(source.max(-1).astype(np.float64), shape=shape).ravel()
    after = imresize(output.max(-1).astype(np.float64), shape=shape).ravel()
    changed = sum(np.count_nonzero((before[i] >= before) != (after[i] >= after)) for i in range(before.size))
    return changed / before.size


def lpips_weights_path():
    return os.path.join(torch.hub.get_dir(), 'checkpoints', ALEXNET_FILE)


class LPIPS:
    """Learned perceptual distance (Zhang et al. 2018, AlexNet, lower is better) through the lpips package;
    needs torchvision's AlexNet weights on disk (nothing is downloaded)."""

    def __init__(self, device='cpu'):
        import lpips
        path = lpips_weights_path()
        if not os.path.isfile(path):
            raise FileNotFoundError('LPIPS skipped: AlexNet weights not found; download %s to %s'
                                    % (ALEXNET_URL, path))
        self.device = device
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', UserWarning)  # lpips asks torchvision for weights the legacy way
            self.model = lpips.LPIPS(net='alex', verbose=False).to(device).eval()

    def __call__(self, output, reference):
        with torch.no_grad():
            return float(self.model(*(from_uint8(image[None]).to(self.device) for image in (output, reference))))
