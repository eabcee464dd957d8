"""How the networks run, apart from what they compute: spread over GPUs, memory layout, recomputation in the
backward pass (--activation_checkpointing) and mixed precision (--amp)."""
import contextlib

import torch
import torch.nn as nn

from util import distributed
from .generators import ResnetBlock


def prepare(net, opt):
    """net as the options ask it to run: NHWC weights with --channels_last (convolutions then pass the layout on to
    their outputs); ResNet blocks that recompute their activations in the backward pass with
    --activation_checkpointing (training only); SyncBatchNorm for --norm batch under torchrun; DataParallel over
    --gpu_ids 0,1,... in one process."""
    if opt.channels_last:
        net = net.to(memory_format=torch.channels_last)
    for block in net.modules():
        if isinstance(block, ResnetBlock):
            block.recompute = opt.isTrain and opt.activation_checkpointing
    if distributed.world_size() > 1:
        return nn.SyncBatchNorm.convert_sync_batchnorm(net) if opt.norm == 'batch' else net
    return nn.DataParallel(net, opt.gpu_ids) if len(opt.gpu_ids) > 1 else net


def unwrap(net):
    """The network inside a DataParallel wrapper."""
    return net.module if isinstance(net, nn.DataParallel) else net


def autocast(opt, device):
    """The autocast context of --amp; none at all for --amp none (older PyTorch rejects autocast on MPS even when
    disabled)."""
    dtype = {'bf16': torch.bfloat16, 'fp16': torch.float16}.get(opt.amp)
    return torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
