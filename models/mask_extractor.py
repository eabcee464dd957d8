"""The mask extractor H: ResNet features with channel and spatial attention, giving a residual H and a mask."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .generators import ResnetBlock, stem, uses_bias
from .in_memory import IN_MEMORY


class MaskExtractor(nn.Module):
    """Returns (H, mask): H is a tanh residual image, mask a sigmoid attention map with one channel.

    The features are reflect-padded by 3 before both 7x7 heads, so the pooled channel statistics also see the
    padded border, as in the official network (`ResnetExtractor`).
    """

    def __init__(self, input_nc=3, output_nc=3, ngf=64, norm_layer=nn.InstanceNorm2d, use_dropout=False,
                 n_blocks=3):
        super().__init__()
        blocks = [ResnetBlock(ngf, norm_layer, use_dropout, uses_bias(norm_layer)) for _ in range(n_blocks)]
        self.model = nn.Sequential(*stem(input_nc, ngf, norm_layer), *blocks, nn.ReflectionPad2d(3))
        self.output = nn.Conv2d(ngf, output_nc, 7)
        reduced = max(ngf // 16, 1)
        self.fc1 = nn.Conv2d(ngf * 2, reduced, 1, bias=False)
        self.fc2 = nn.Conv2d(reduced, ngf * 2, 1, bias=False)
        self.conv_ca = nn.Conv2d(ngf * 2, ngf, 1, bias=False)
        self.conv1 = nn.Conv2d(2, 1, 7, bias=False)

    def forward(self, x, ops=IN_MEMORY):
        feat = ops.sequential(self.model, x)
        weights = self.conv_ca(self.fc2(F.relu(self.fc1(ops.pooled(feat)))))
        spatial = ops.combine(lambda f: self.spatial_statistics(weights * f), 2, feat)
        return ops.sequential((self.output, torch.tanh), feat), ops.sequential((self.conv1, torch.sigmoid), spatial)

    @staticmethod
    def spatial_statistics(attended):
        """Each pixel's mean and maximum over the channels: (N, 2, H, W)."""
        return torch.cat([attended.mean(1, keepdim=True), attended.amax(1, keepdim=True)], dim=1)
