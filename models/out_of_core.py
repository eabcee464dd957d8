"""Exact inference for photos too large to enhance in memory (test.py --tile N).

Pre, H and G_A run layer by layer, through the same description of themselves that runs them in memory (their
forward(x, ops), with this Engine as ops; models/in_memory.py); each layer is computed in bands of rows (about
N x N pixels each) from the previous layer's output, which waits in a temporary file. Instance norms use statistics
gathered over the whole image while their input was written, so the result equals the in-memory one (no seams, no
blending) while memory holds only a few bands. Temporary files go to the system's temporary folder (TMPDIR).
"""
import inspect
import tempfile

import torch
import torch.nn as nn
import torch.nn.functional as F

from util.util import UserError
from .execution import unwrap

TILED_GENERATORS = ('resnet_9blocks', 'resnet_6blocks')
RESNET_ONLY = '--tile supports the ResNet generators only (--netG %s)' % ' or '.join(TILED_GENERATORS)


def reflect(i, size):
    return -i if i < 0 else 2 * (size - 1) - i if i >= size else i


class Activation:
    """A (C, H, W) tensor (float32, or float64 for float64 networks) kept in a file row after row, with the mean,
    variance and maximum of each channel.
    Reading applies the pointwise operations (norm, ReLU, tanh...) that later layers append to `ops`; each gets a
    fresh tensor it may change in place."""

    def __init__(self, folder, channels, height, width, stats, dtype):
        self.shape = (channels, height, width)
        self.stats = stats
        self.dtype, self.itemsize = dtype, torch.empty(0, dtype=dtype).element_size()
        self.file = tempfile.TemporaryFile(dir=folder)
        self.ops = []
        self.count = 0
        self.mean = torch.zeros(channels, dtype=torch.float64)
        self.var = torch.zeros(channels, dtype=torch.float64)
        self.max = torch.full((channels,), -float('inf'), dtype=torch.float64)

    def write(self, top, band):
        band = band.to(self.dtype).cpu()
        if self.stats:  # each band's mean and squared deviations, merged in float64 (Chan et al.)
            mean = band.mean((1, 2))
            sq_dev = torch.linalg.vector_norm(band - mean[:, None, None], dim=(1, 2)).double().square()
            count = band.shape[1] * band.shape[2]
            total = self.count + count
            delta = mean.double() - self.mean
            self.var = (self.var * self.count + sq_dev + delta.square() * self.count * count / total) / total
            self.mean += delta * count / total
            self.count = total
            self.max = torch.maximum(self.max, band.amax((1, 2)).double())
        channels, _, width = self.shape
        self.file.seek(top * channels * width * self.itemsize)
        self.file.write(band.transpose(0, 1).contiguous().numpy().data)

    def read(self, top, bottom):
        """Rows top..bottom-1, which lie inside the image, as (C, rows, W)."""
        channels, _, width = self.shape
        x = torch.empty(bottom - top, channels, width, dtype=self.dtype)
        self.file.seek(top * channels * width * self.itemsize)
        self.file.readinto(x.numpy().data.cast('B'))
        x = x.transpose(0, 1)
        for op in self.ops:
            x = op(x)
        return x

    def rows(self, top, bottom, mode):
        """Rows top..bottom-1 where those outside the image are mirrored (mode 'reflect') or zero."""
        height = self.shape[1]
        if mode == 'reflect':
            index = [reflect(i, height) for i in range(top, bottom)]
            first = min(index)
            return self.read(first, max(index) + 1)[:, [i - first for i in index]]
        inside = self.read(max(top, 0), min(bottom, height))
        return F.pad(inside, (0, 0, max(top, 0) - top, bottom - min(bottom, height)))

    def normalise(self, layer):
        """Append an instance norm, or a batch norm (whole-image statistics in training mode, as for a batch of one
        image; running statistics in eval mode)."""
        if isinstance(layer, nn.InstanceNorm2d) or layer.training:
            mean, var = self.mean, self.var
        else:
            mean, var = layer.running_mean.double().cpu(), layer.running_var.double().cpu()
        scale = var.add(layer.eps).rsqrt()
        shift = -mean * scale
        if layer.affine:
            weight, bias = layer.weight.detach().double().cpu(), layer.bias.detach().double().cpu()
            scale, shift = scale * weight, shift * weight + bias
        scale, shift = scale.to(self.dtype)[:, None, None], shift.to(self.dtype)[:, None, None]
        self.ops.append(lambda x: torch.addcmul(shift, x, scale))


class Engine:
    """Runs layers on Activations, band by band, on the device of the weights; step, if given, is called after each
    band (as by models/in_memory.py)."""

    def __init__(self, folder, band_pixels, device, dtype, step=None):
        self.folder = folder
        self.band_pixels = band_pixels
        self.device = device
        self.dtype = dtype
        self.step = step

    def new(self, channels, height, width, stats=False):
        return Activation(self.folder, channels, height, width, stats, self.dtype)

    def map(self, channels, height, width, compute, stats=False):
        """A new Activation whose rows top..bottom-1 are compute(top, bottom), band by band."""
        out = self.new(channels, height, width, stats)
        rows = max(1, self.band_pixels // width)
        for top in range(0, height, rows):
            out.write(top, compute(top, min(top + rows, height)))
            if self.step:
                self.step()
        return out

    def conv(self, x, layer, pad, mode):
        _, height, width = x.shape
        kernel, stride = layer.kernel_size[0], layer.stride[0]
        out_h, out_w = (height + 2 * pad - kernel) // stride + 1, (width + 2 * pad - kernel) // stride + 1

        def compute(top, bottom):
            band = x.rows(top * stride - pad, (bottom - 1) * stride + kernel - pad, mode)[None].to(self.device)
            band = F.pad(band, (pad, pad, 0, 0), mode='reflect' if mode == 'reflect' else 'constant')
            return F.conv2d(band, layer.weight, layer.bias, stride=stride)[0]

        return self.map(layer.out_channels, out_h, out_w, compute, stats=True)

    def conv_transpose(self, x, layer):
        """ConvTranspose2d(kernel 3, stride 2, padding 1, output_padding 1), as the generators upsample."""
        _, height, width = x.shape

        def compute(top, bottom):
            first, last = max(0, top // 2 - 1), min(height, bottom // 2 + 1)
            band = F.conv_transpose2d(x.read(first, last)[None].to(self.device), layer.weight, layer.bias, stride=2)
            return band[0, :, top - 2 * first + 1:bottom - 2 * first + 1, 1:2 * width + 1]

        return self.map(layer.out_channels, 2 * height, 2 * width, compute, stats=True)

    def pad(self, x, pad):
        """Reflection padding on all four sides, written out (its statistics then include the border)."""
        channels, height, width = x.shape
        return self.map(channels, height + 2 * pad, width + 2 * pad, lambda top, bottom: F.pad(
            x.rows(top - pad, bottom - pad, 'reflect')[None], (pad, pad, 0, 0), mode='reflect')[0], stats=True)

    def combine(self, function, channels, *inputs):
        """function of inputs (Activations of one height and width), band by band, giving `channels` channels."""
        _, height, width = inputs[0].shape
        return self.map(channels, height, width, lambda top, bottom: function(
            *(a.read(top, bottom)[None].to(self.device) for a in inputs))[0])

    def pooled(self, x):
        """Each channel's mean and maximum over the image (whose statistics x gathered): (1, 2C, 1, 1)."""
        return torch.cat([x.mean, x.max]).to(self.device, self.dtype)[None, :, None, None]

    def bands(self, x, channels, compute, setup):
        """compute(band, setup(height, width)) on bands of rows of x zero-padded by one pixel all round, each with
        its row above and below."""
        _, height, width = x.shape
        common = setup(height, width)
        return self.map(channels, height, width, lambda top, bottom: compute(
            F.pad(x.rows(top - 1, bottom + 1, 'zeros')[None].to(self.device), (1, 1, 0, 0)), common)[0])

    def sequential(self, layers, x, recompute=False):
        """Run a sequence of layers: convolutions, norms and pointwise layers here, networks that describe
        themselves (ResNet blocks) through their forward(x, ops)."""
        pad = 0
        for layer in layers:
            if isinstance(layer, nn.ReflectionPad2d):
                pad = layer.padding[0]
            elif isinstance(layer, nn.Conv2d):
                x = self.conv(x, layer, pad, 'reflect') if pad else self.conv(x, layer, layer.padding[0], 'zeros')
                pad = 0
            elif isinstance(layer, nn.ConvTranspose2d):
                if (layer.kernel_size, layer.stride, layer.padding, layer.output_padding) != ((3, 3), (2, 2),
                                                                                                (1, 1), (1, 1)):
                    raise UserError('--tile: this transposed convolution is not supported')
                x = self.conv_transpose(x, layer)
            elif isinstance(layer, (nn.InstanceNorm2d, nn.BatchNorm2d)):
                x.normalise(layer)
            elif isinstance(layer, nn.ReLU):
                x.ops.append(torch.relu_)
            elif isinstance(layer, nn.Tanh) or layer is torch.tanh:
                x.ops.append(torch.tanh_)
            elif layer is torch.sigmoid:
                x.ops.append(torch.sigmoid_)
            elif described(layer):
                x = self.network(layer, x)
            elif not isinstance(layer, (nn.Dropout, nn.Identity)):
                raise UserError('%s, not %s layers' % (RESNET_ONLY, type(layer).__name__))
        return self.pad(x, pad) if pad else x

    def network(self, net, x):
        """net's output for x, through its description of itself (its forward(x, ops))."""
        net = unwrap(net)
        if not described(net):
            raise UserError('%s, not %s' % (RESNET_ONLY, type(net).__name__))
        return net.forward(x, self)


def described(layer):
    """Whether layer describes its computation for any runner (its forward takes ops)."""
    return isinstance(layer, nn.Module) and 'ops' in inspect.signature(layer.forward).parameters


def run(path, x, band_size, step=None):
    """path(ops, x) (a function of a runner and the input giving a tuple of outputs) for each image of x (B, 3, H, W)
    computed out of core in bands of about band_size x band_size pixels (step called after each); the outputs
    stacked again."""
    outputs = []
    try:
        with tempfile.TemporaryDirectory(prefix='nerco_tile_') as folder:
            engine = Engine(folder, band_size * band_size, x.device,
                            torch.float64 if x.dtype == torch.float64 else torch.float32, step)
            for image in x:
                source = engine.new(*image.shape)
                source.write(0, image)
                outputs.append([a.read(0, a.shape[1]).to(x.device) for a in path(engine, source)])
    except OSError as exc:
        raise UserError('--tile: temporary files in %s: %s; set TMPDIR to a folder on a disk with more room'
                        % (tempfile.gettempdir(), exc.strerror or exc)) from None
    return [torch.stack(parts) for parts in zip(*outputs)]
