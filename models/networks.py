"""Builders shared by every NeRCo network: normalisation, weight init, LR schedules, and the define_* factories."""
import functools
import inspect
import re

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn import init
from torch.optim import lr_scheduler

from util.runtime import out_of_memory
from util.util import UserError
from .discriminators import NLayerDiscriminator, PixelDiscriminator
from .generators import ResnetGenerator, UnetGenerator
from .mask_extractor import MaskExtractor
from .nrn import NRN

GENERATORS = ('resnet_9blocks', 'resnet_6blocks', 'unet_128', 'unet_256')
# what each generator needs of an image's sides: a multiple of 2 ** (its downsamplings), at least 8 (the ResNet
# bottleneck's reflection padding; the NRN and H are ResNets whatever the generator)
SIDE_MULTIPLE = {'resnet_9blocks': 4, 'resnet_6blocks': 4, 'unet_128': 128, 'unet_256': 256}
DISCRIMINATORS = ('basic', 'n_layers', 'pixel')
NORMS = ('instance', 'batch', 'none')
INIT_TYPES = ('normal', 'xavier', 'kaiming', 'orthogonal')
LR_POLICIES = ('linear', 'step', 'plateau', 'cosine')


class InstanceNorm2d(nn.InstanceNorm2d):
    """nn.InstanceNorm2d, which on a channels-last image normalises it in that layout (as a batch norm of one image,
    the same statistics) instead of copying it to channels-first and back."""

    def forward(self, x):
        if (not torch.compiler.is_exporting() and x.shape[0] == 1 and not self.affine and not x.is_contiguous()
                and x.is_contiguous(memory_format=torch.channels_last)):
            return F.batch_norm(x, None, None, training=True, eps=self.eps)
        return super().forward(x)


def get_norm_layer(norm_type='instance'):
    """Return a constructor for the normalisation layer named by --norm."""
    if norm_type == 'batch':
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm_type == 'instance':
        return functools.partial(InstanceNorm2d, affine=False, track_running_stats=False)
    if norm_type == 'none':
        return lambda channels: nn.Identity()
    raise ValueError('--norm %s is not one of %s' % (norm_type, ', '.join(NORMS)))


def init_weights(net, init_type='normal', init_gain=0.02):
    """Initialise conv and linear weights (and BatchNorm scales) the CycleGAN way."""
    def init_func(m):
        classname = m.__class__.__name__
        if hasattr(m, 'weight') and ('Conv' in classname or 'Linear' in classname):
            if init_type == 'normal':
                init.normal_(m.weight, 0.0, init_gain)
            elif init_type == 'xavier':
                init.xavier_normal_(m.weight, gain=init_gain)
            elif init_type == 'kaiming':
                init.kaiming_normal_(m.weight, a=0, mode='fan_in')
            elif init_type == 'orthogonal':
                init.orthogonal_(m.weight, gain=init_gain)
            else:
                raise ValueError('--init_type %s is not one of %s' % (init_type, ', '.join(INIT_TYPES)))
            if getattr(m, 'bias', None) is not None:
                init.constant_(m.bias, 0.0)
        elif 'BatchNorm2d' in classname:
            init.normal_(m.weight, 1.0, init_gain)
            init.constant_(m.bias, 0.0)

    with torch.no_grad():
        net.apply(init_func)


def init_net(net, init_type='normal', init_gain=0.02, device='cpu'):
    """Initialise a network's weights and move it to its device."""
    init_weights(net, init_type, init_gain)
    return net.to(device)


def get_scheduler(optimizer, opt, plateau_mode='min'):
    """Learning-rate scheduler for --lr_policy (linear keeps the rate for n_epochs, then decays it to zero;
    plateau watches a validation metric that plateau_mode says is better lower ('min') or higher ('max'))."""
    if opt.lr_policy == 'linear':
        def lambda_rule(epoch):
            return 1.0 - max(0, epoch + opt.epoch_count - opt.n_epochs) / float(opt.n_epochs_decay + 1)
        return lr_scheduler.LambdaLR(optimizer, lr_lambda=lambda_rule)
    if opt.lr_policy == 'step':
        return lr_scheduler.StepLR(optimizer, step_size=opt.lr_decay_iters, gamma=0.1)
    if opt.lr_policy == 'plateau':  # stepped after each validation, on the metric
        return lr_scheduler.ReduceLROnPlateau(optimizer, mode=plateau_mode, factor=0.2, threshold=0.01, patience=5)
    if opt.lr_policy == 'cosine':
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=opt.n_epochs, eta_min=0)
    raise ValueError('--lr_policy %s is not one of %s' % (opt.lr_policy, ', '.join(LR_POLICIES)))


def sized(flag):
    """Decorator for a define_* function: running out of memory while building its network (a huge --ngf or --ndf)
    is a UserError naming the flag, not a traceback."""
    def decorate(define):
        @functools.wraps(define)
        def build(*args, **kwargs):
            try:
                return define(*args, **kwargs)
            except (MemoryError, RuntimeError) as exc:
                if out_of_memory(exc) is None:
                    raise
                value = inspect.signature(define).bind(*args, **kwargs).arguments[flag]
                needed = re.search(r'allocate (\d+) bytes', str(exc))
                why = ('one layer alone takes %.1f GB' % (int(needed.group(1)) / 1e9) if needed else
                       'out of %s memory' % out_of_memory(exc))
                raise UserError('%s %s: networks this wide do not fit in memory (%s); choose a smaller --%s%s' % (
                    flag, value, why, flag, ' (or ngf in config.json)' if flag == 'ngf' else '')) from None
        return build
    return decorate


@sized('ngf')
def define_G(input_nc, output_nc, ngf, netG, norm='instance', use_dropout=False,
             init_type='normal', init_gain=0.02, device='cpu'):
    """The enhancer G_A (6 -> 3 channels) or the degrader G_B (3 -> 3), chosen by --netG."""
    norm_layer = get_norm_layer(norm)
    if netG == 'resnet_9blocks':
        net = ResnetGenerator(input_nc, output_nc, ngf, norm_layer, use_dropout, n_blocks=9)
    elif netG == 'resnet_6blocks':
        net = ResnetGenerator(input_nc, output_nc, ngf, norm_layer, use_dropout, n_blocks=6)
    elif netG == 'unet_128':
        net = UnetGenerator(input_nc, output_nc, 7, ngf, norm_layer, use_dropout)
    elif netG == 'unet_256':
        net = UnetGenerator(input_nc, output_nc, 8, ngf, norm_layer, use_dropout)
    else:
        raise ValueError('--netG %s is not one of %s' % (netG, ', '.join(GENERATORS)))
    return init_net(net, init_type, init_gain, device)


@sized('ngf')
def define_Pre(input_nc, ngf, norm='instance', use_dropout=False, init_type='normal', init_gain=0.02, device='cpu'):
    """The neural representation normalisation network (NRN); its encoder is always the 9-block ResNet trunk."""
    return init_net(NRN(input_nc, ngf, get_norm_layer(norm), use_dropout), init_type, init_gain, device)


@sized('ngf')
def define_H(input_nc, output_nc, ngf, norm='instance', use_dropout=False, init_type='normal', init_gain=0.02,
             device='cpu'):
    """The mask extractor H."""
    net = MaskExtractor(input_nc, output_nc, ngf, get_norm_layer(norm), use_dropout)
    return init_net(net, init_type, init_gain, device)


def define_inference(input_nc, output_nc, ngf, netG, norm='instance', use_dropout=False, init_type='normal',
                     init_gain=0.02, device='cpu'):
    """The inference networks in the order their weights are drawn: {'G_A': the enhancer (on cat(image, Pre(image))),
    'Pre': the NRN, 'H': the mask extractor}."""
    init = dict(norm=norm, use_dropout=use_dropout, init_type=init_type, init_gain=init_gain, device=device)
    return {'G_A': define_G(input_nc * 2, output_nc, ngf, netG, **init), 'Pre': define_Pre(input_nc, ngf, **init),
            'H': define_H(input_nc, output_nc, ngf, **init)}


@sized('ndf')
def define_D(input_nc, ndf, netD, n_layers_D=3, norm='instance', init_type='normal', init_gain=0.02, device='cpu'):
    """A PatchGAN discriminator chosen by --netD (basic is the 70x70 PatchGAN)."""
    norm_layer = get_norm_layer(norm)
    if netD == 'basic':
        net = NLayerDiscriminator(input_nc, ndf, 3, norm_layer)
    elif netD == 'n_layers':
        net = NLayerDiscriminator(input_nc, ndf, n_layers_D, norm_layer)
    elif netD == 'pixel':
        net = PixelDiscriminator(input_nc, ndf, norm_layer)
    else:
        raise ValueError('--netD %s is not one of %s' % (netD, ', '.join(DISCRIMINATORS)))
    return init_net(net, init_type, init_gain, device)
