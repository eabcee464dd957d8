"""Appearance discriminators: PatchGAN networks for colour (images) and detail (high-pass maps), and the GAN loss."""
import torch
import torch.nn as nn

from .generators import uses_bias

GAN_MODES = ('lsgan', 'vanilla', 'wgangp')


class NLayerDiscriminator(nn.Module):
    """PatchGAN: n_layers stride-2 convolutions, then two stride-1 ones; one score per receptive-field patch."""

    def __init__(self, input_nc, ndf=64, n_layers=3, norm_layer=nn.BatchNorm2d):
        super().__init__()
        use_bias = uses_bias(norm_layer)
        layers = [nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=use_bias),
                       norm_layer(ndf * mult), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)

    @staticmethod
    def smallest_input(n_layers):
        """The smallest side, a multiple of 4, for which every normalised layer keeps more than one pixel per
        channel (a norm of a single pixel fails in training) and one score is left."""
        def fits(side):
            side //= 2
            for n in range(1, n_layers + 1):
                side = side // 2 if n < n_layers else side - 1
                if side < 2:
                    return False
            return True
        return next(side for side in range(4, 1 << 16, 4) if fits(side))


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN: classifies every pixel."""

    def __init__(self, input_nc, ndf=64, norm_layer=nn.BatchNorm2d):
        super().__init__()
        use_bias = uses_bias(norm_layer)
        self.net = nn.Sequential(
            nn.Conv2d(input_nc, ndf, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=use_bias), norm_layer(ndf * 2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=use_bias))

    def forward(self, x):
        return self.net(x)


class GANLoss(nn.Module):
    """GAN objective against a real / fake target: lsgan (MSE), vanilla (BCE with logits) or wgangp (+-mean)."""

    def __init__(self, gan_mode='lsgan', target_real_label=1.0, target_fake_label=0.0):
        super().__init__()
        if gan_mode not in GAN_MODES:
            raise ValueError('--gan_mode %s is not one of %s' % (gan_mode, ', '.join(GAN_MODES)))
        self.register_buffer('real_label', torch.tensor(target_real_label))
        self.register_buffer('fake_label', torch.tensor(target_fake_label))
        self.gan_mode = gan_mode
        self.loss = {'lsgan': nn.MSELoss(), 'vanilla': nn.BCEWithLogitsLoss()}.get(gan_mode)

    def forward(self, prediction, target_is_real):
        if self.gan_mode == 'wgangp':
            return -prediction.mean() if target_is_real else prediction.mean()
        target = self.real_label if target_is_real else self.fake_label
        return self.loss(prediction, target.to(prediction.dtype).expand_as(prediction))
