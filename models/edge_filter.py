"""The high-pass filter that feeds the detail discriminators: grey image -> gradient magnitude -> 3 channels, x4."""
import torch
import torch.nn as nn
import torch.nn.functional as F

EDGE_FILTERS = ('sobel', 'laplacian')
EDGE_RGB = ('random', 'repeat')
GRAY = (65.738 / 256, 129.057 / 256, 25.064 / 256)


class EdgeFilter(nn.Module):
    """`sobel` is the official filter (central differences, magnitude sqrt(dx^2 + dy^2 + 1e-6)); `laplacian` is a
    3x3 Laplacian, |lap| computed as sqrt(lap^2 + 1e-6).

    The official code maps the one-channel magnitude to three channels with a 1x1 convolution created afresh, with
    PyTorch's default (uniform [-1, 1]) initialisation, on every call; `rgb='random'` reproduces that, drawing from
    torch's random generator. `rgb='repeat'` copies the magnitude to the three channels instead.
    """

    def __init__(self, kind='sobel', rgb='random'):
        super().__init__()
        if kind not in EDGE_FILTERS:
            raise ValueError('--edge_filter %s is not one of %s' % (kind, ', '.join(EDGE_FILTERS)))
        if rgb not in EDGE_RGB:
            raise ValueError('--edge_rgb %s is not one of %s' % (rgb, ', '.join(EDGE_RGB)))
        if kind == 'sobel':
            kernels = [[[0, -1, 0], [0, 0, 0], [0, 1, 0]], [[0, 0, 0], [-1, 0, 1], [0, 0, 0]]]
        else:
            kernels = [[[0, 1, 0], [1, -4, 1], [0, 1, 0]]]
        self.register_buffer('kernels', torch.tensor(kernels, dtype=torch.float32).unsqueeze(1), persistent=False)
        self.register_buffer('gray', torch.tensor(GRAY).view(1, 3, 1, 1), persistent=False)
        self.rgb = rgb

    def forward(self, x):
        if x.shape[1] == 3:
            x = (x * self.gray.to(x.dtype)).sum(dim=1, keepdim=True)
        responses = F.conv2d(x, self.kernels.to(x.dtype), padding=1)
        magnitude = torch.sqrt(responses.pow(2).sum(dim=1, keepdim=True) + 1e-6)
        if self.rgb == 'repeat':
            return magnitude.expand(-1, 3, -1, -1) * 4
        weight = torch.empty(3, 1, 1, 1, device=x.device, dtype=x.dtype).uniform_(-1, 1)
        bias = torch.empty(3, device=x.device, dtype=x.dtype).uniform_(-1, 1)
        return F.conv2d(magnitude, weight, bias) * 4
