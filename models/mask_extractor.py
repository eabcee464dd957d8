"""The mask extractor H: ResNet features with channel and spatial attention, giving a residual H and a mask."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .generators import ResnetBlock, stem, uses_bias


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

    def forward(self, x):
        feat = self.model(x)
        pooled = torch.cat([feat.mean((2, 3), keepdim=True), feat.amax((2, 3), keepdim=True)], dim=1)
        attended = self.conv_ca(self.fc2(F.relu(self.fc1(pooled)))) * feat
        spatial = torch.cat([attended.mean(1, keepdim=True), attended.amax(1, keepdim=True)], dim=1)
        mask = torch.sigmoid(self.conv1(spatial))
        return torch.tanh(self.output(feat)), mask

    def out_of_core(self, engine, x):
        """forward for --tile (models/out_of_core.py): the pooled statistics come from the whole feature map."""
        feat = engine.sequential(self.model, x)
        pooled = torch.cat([feat.mean, feat.max]).to(engine.device, engine.dtype)[None, :, None, None]
        weights = self.conv_ca(self.fc2(F.relu(self.fc1(pooled))))[0].to('cpu', engine.dtype)

        def spatial(top, bottom):
            attended = feat.read(top, bottom) * weights
            return torch.cat([attended.mean(0, keepdim=True), attended.amax(0, keepdim=True)])

        mask = engine.conv(engine.map(2, *feat.shape[1:], spatial), self.conv1, 0, 'zeros')
        mask.ops.append(torch.sigmoid_)
        residual = engine.conv(feat, self.output, 0, 'zeros')
        residual.ops.append(torch.tanh_)
        return residual, mask
