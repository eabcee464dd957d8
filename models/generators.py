"""The enhancer G_A and degrader G_B: CycleGAN's ResNet and U-Net generators, plus the ResNet pieces NRN and H reuse."""
import functools

import torch
import torch.nn as nn

from .in_memory import IN_MEMORY


def uses_bias(norm_layer):
    """Convolutions keep their bias unless an affine norm (BatchNorm) follows; InstanceNorm here has no affine."""
    func = norm_layer.func if isinstance(norm_layer, functools.partial) else norm_layer
    return isinstance(func, type) and issubclass(func, nn.InstanceNorm2d)


class ResnetBlock(nn.Module):
    """Two reflect-padded 3x3 convolutions with a skip connection. It declares `recompute`: when set
    (--activation_checkpointing), training keeps only the block's input and recomputes the rest in the backward
    pass."""

    def __init__(self, dim, norm_layer, use_dropout, use_bias):
        super().__init__()
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm_layer(dim), nn.ReLU(True)]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm_layer(dim)]
        self.conv_block = nn.Sequential(*layers)
        self.dim = dim
        self.recompute = False

    def forward(self, x, ops=IN_MEMORY):
        return ops.combine(torch.add, self.dim, x, ops.sequential(self.conv_block, x, self.recompute))


def stem(input_nc, ngf, norm_layer):
    """Reflect-padded 7x7 convolution, norm, ReLU: the first layers of every ResNet-style network here."""
    return [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=uses_bias(norm_layer)), norm_layer(ngf),
            nn.ReLU(True)]


def resnet_trunk(input_nc, ngf, norm_layer, use_dropout, n_blocks):
    """Layers from the input to ngf features at full resolution: stem, two stride-2 downsamples, n_blocks
    ResNet blocks at 4*ngf channels, two transposed-conv upsamples."""
    use_bias = uses_bias(norm_layer)
    layers = stem(input_nc, ngf, norm_layer)
    for mult in (1, 2):
        layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=use_bias),
                   norm_layer(ngf * mult * 2), nn.ReLU(True)]
    layers += [ResnetBlock(ngf * 4, norm_layer, use_dropout, use_bias) for _ in range(n_blocks)]
    for mult in (4, 2):
        layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1,
                                      bias=use_bias),
                   norm_layer(ngf * mult // 2), nn.ReLU(True)]
    return layers


class ResnetGenerator(nn.Module):
    """The ResNet trunk followed by a reflect-padded 7x7 convolution and tanh."""

    def __init__(self, input_nc, output_nc, ngf=64, norm_layer=nn.BatchNorm2d, use_dropout=False, n_blocks=9):
        super().__init__()
        layers = resnet_trunk(input_nc, ngf, norm_layer, use_dropout, n_blocks)
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x, ops=IN_MEMORY):
        return ops.sequential(self.model, x)


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: downsample, the inner submodule, upsample, and (except outermost) a skip concat."""

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 norm_layer=nn.BatchNorm2d, use_dropout=False):
        super().__init__()
        self.outermost = outermost
        use_bias = uses_bias(norm_layer)
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=use_bias)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1)
            layers = [downconv, submodule, nn.ReLU(True), upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, 4, stride=2, padding=1, bias=use_bias)
            layers = [nn.LeakyReLU(0.2, True), downconv, nn.ReLU(True), upconv, norm_layer(outer_nc)]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1, bias=use_bias)
            layers = [nn.LeakyReLU(0.2, True), downconv, norm_layer(inner_nc), submodule,
                      nn.ReLU(True), upconv, norm_layer(outer_nc)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """U-Net with num_downs levels (7 for 128x128 inputs, 8 for 256x256)."""

    def __init__(self, input_nc, output_nc, num_downs, ngf=64, norm_layer=nn.BatchNorm2d, use_dropout=False):
        super().__init__()
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, norm_layer=norm_layer, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm_layer=norm_layer,
                                            use_dropout=use_dropout)
        for mult in (4, 2, 1):
            block = UnetSkipConnectionBlock(ngf * mult, ngf * mult * 2, submodule=block, norm_layer=norm_layer)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True,
                                             norm_layer=norm_layer)

    def forward(self, x, ops=IN_MEMORY):
        return ops.sequential((self.model,), x)
