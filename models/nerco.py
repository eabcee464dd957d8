"""NeRCo's inference path as one module: the NRN (Pre), the mask extractor (H) and the enhancer (G_A), built from a
small architecture config, mapping low-light images of any size to (pre_A, H, mask, fake_B). Training
(models/NeRCo_model.py), the inference door (models/inference.py), --tile and the Hub / ONNX export
(models/deployment.py) all run it."""
import collections
import dataclasses
import json

import torch
import torch.nn as nn

from util.util import UserError
from . import networks, out_of_core
from .in_memory import IN_MEMORY, InMemory

Enhanced = collections.namedtuple('Enhanced', 'pre_A H mask fake_B')
NETWORKS = ('G_A', 'Pre', 'H')  # the order in which their weights are drawn


@dataclasses.dataclass(frozen=True)
class Architecture:
    """What the inference networks are built from: the flags of the same names."""
    ngf: int = 64
    netG: str = 'resnet_9blocks'
    norm: str = 'instance'
    no_dropout: bool = True
    input_nc: int = 3
    output_nc: int = 3

    @classmethod
    def from_options(cls, opt):
        """The architecture the options (of train.py or test.py) name."""
        return cls(**{field.name: getattr(opt, field.name) for field in dataclasses.fields(cls)})

    @classmethod
    def from_record(cls, values, source):
        """The architecture among a run's recorded options ({flag: value} from train_opt.json, or as text from the
        official train_opt.txt, in source); flags it does not record keep their defaults."""
        chosen = cls().config()
        # the JSON type, or the text of train_opt.txt; a float or bool for a number, or 1 for True, is not read
        kinds = {bool: ('True or False', lambda v: v if type(v) is bool else {'True': True, 'False': False}[v]),
                 int: ('a whole number', lambda v: v if type(v) is int else int(v) if type(v) is str else {}[v]),
                 str: ('a name', str)}
        for field in dataclasses.fields(cls):
            value = values.get(field.name, chosen[field.name])
            what, read = kinds[field.type]
            try:
                chosen[field.name] = read(value)
            except (KeyError, TypeError, ValueError):
                raise UserError('%s: %s %s is not %s' % (source, field.name, json.dumps(value), what)) from None
        return cls.from_config(chosen, source)

    @classmethod
    def from_config(cls, config, source='config.json'):
        """The architecture in a Hub config ({key: value} as config.json holds it); a UserError naming source and
        the first value that cannot describe a NeRCo, as the file holds it."""
        def whole(value, least):
            return type(value) is int and value >= least
        rules = (('ngf', lambda v: whole(v, 1), 'must be a whole number of filters, 1 or more'),
                 ('netG', lambda v: v in networks.GENERATORS, 'must be one of %s' % ', '.join(networks.GENERATORS)),
                 ('norm', lambda v: v in networks.NORMS, 'must be one of %s' % ', '.join(networks.NORMS)),
                 ('no_dropout', lambda v: type(v) is bool, 'must be true or false'),
                 ('input_nc', lambda v: v == 3 and type(v) is int, 'must be 3 (RGB)'),
                 ('output_nc', lambda v: v == 3 and type(v) is int, 'must be 3 (RGB)'))
        for name, fits, what in rules:
            if not fits(config[name]):
                raise UserError('%s: %s %s %s' % (source, name, json.dumps(config[name]), what))
        return cls(**{name: config[name] for name, _, _ in rules})

    def config(self):
        return dataclasses.asdict(self)


def padding_index(n, multiple, minimum, device):
    """The indices 0 .. m - 1 of a side of length n padded at its end to m = max(ceil(n / multiple) * multiple,
    minimum), and whether reflection fits that side (its pad shorter than itself), as a tensor. (No floor division
    of a negative number: ONNX's integer division truncates.)"""
    index = torch.arange(torch.sym_max((n + multiple - 1) // multiple * multiple, minimum), device=device)
    return index, index[-1] < 2 * n - 1


def pad_to_multiple(x, multiple=4, minimum=8):
    """Pad the bottom and right of x so both sides are multiples of `multiple` and at least `minimum` (the
    generators downsample twice and reflect-pad their bottleneck): reflect where the image is large enough,
    replicate otherwise. Written as indexing, with no branch on the size, so that an exported graph pads any size
    (models/deployment.py)."""
    h, w = x.shape[-2:]
    rows, rows_fit = padding_index(h, multiple, minimum, x.device)
    cols, cols_fit = padding_index(w, multiple, minimum, x.device)
    if isinstance(h, int) and isinstance(w, int) and (len(rows), len(cols)) == (h, w):
        return x  # eager, nothing to pad
    reflect = rows_fit & cols_fit
    rows = torch.where(rows < h, rows, torch.where(reflect, 2 * (h - 1) - rows, h - 1))
    cols = torch.where(cols < w, cols, torch.where(reflect, 2 * (w - 1) - cols, w - 1))
    return x.index_select(-2, rows).index_select(-1, cols)


class ImageBatchNorm(nn.BatchNorm2d):
    """A batch norm (--norm batch) of networks used for inference alone. In training mode, the official test.py's
    default, it normalises each image with the image's own statistics, as that test.py (one image per batch) does,
    so that an image's output does not depend on the others in its batch; it leaves the running statistics as
    trained. In eval mode (--eval) it uses them."""

    def forward(self, x):
        if not self.training:
            return super().forward(x)
        n = x.shape[0]
        weight, bias = (self.weight.repeat(n), self.bias.repeat(n)) if self.affine else (None, None)
        # the images' channels as the channels of one image: the batch norm of each, in one call
        return nn.functional.batch_norm(x.reshape(1, -1, *x.shape[2:]), None, None, weight, bias, True, 0.0,
                                        self.eps).reshape(x.shape)


class NeRCoInference(nn.Module):
    """netPre, netH and netG_A of an Architecture; enhance (and forward) maps a batch of low-light images in
    [-1, 1] to Enhanced(pre_A, H, mask, fake_B), where fake_B = G_A(cat(real_A, Pre(real_A)) * mask)."""

    def __init__(self, architecture=Architecture(), init_type='normal', init_gain=0.02, device='cpu'):
        super().__init__()
        self.architecture = architecture
        a = architecture
        built = networks.define_inference(a.input_nc, a.output_nc, a.ngf, a.netG, a.norm, not a.no_dropout,
                                          init_type, init_gain, device)
        for name in NETWORKS:
            setattr(self, 'net' + name, built[name])

    def networks(self):
        return {name: getattr(self, 'net' + name) for name in NETWORKS}

    def for_inference_alone(self):
        """Self, with its batch norms made ImageBatchNorms (before they are prepared: compiled, channels-last), for
        a module that will not be trained."""
        for layer in self.modules():
            if type(layer) is nn.BatchNorm2d:
                layer.__class__ = ImageBatchNorm
        return self

    def path(self, ops, x):
        """The Enhanced outputs for x whose sides suit the networks, run by ops (models/in_memory.py or
        models/out_of_core.py)."""
        pre_A = ops.network(self.netPre, x)
        H, mask = ops.network(self.netH, x)
        joined = ops.combine(lambda a, p, m: torch.cat((a, p), 1) * m, x.shape[-3] * 2, x, pre_A, mask)
        return Enhanced(pre_A, H, mask, ops.network(self.netG_A, joined))

    def enhance(self, real_A, tile=0, ops=IN_MEMORY, step=None):
        """Enhanced for low-light images in [-1, 1] of any size: an image whose sides do not suit the networks is
        padded for them and the outputs cropped back. tile > 0 computes out of core in bands of about tile x tile
        pixels (models/out_of_core.py); otherwise ops runs the networks (in_memory.ONE_PASS decodes the NRN in one
        pass, as an exported graph does). step, if given, is called after each layer and band of rows and may raise
        to stop the computation."""
        h, w = real_A.shape[-2:]
        multiple = networks.SIDE_MULTIPLE[self.architecture.netG]
        x = pad_to_multiple(real_A, multiple, max(multiple, 8))
        if step:
            ops = InMemory(ops.band_pixels, step)
        outputs = out_of_core.run(self.path, x, tile, step) if tile else self.path(ops, x)
        return Enhanced(*(t[..., :h, :w] for t in outputs))

    forward = enhance
