"""How the networks run, apart from what they compute: spread over GPUs, memory layout, recomputation in the
backward pass (--activation_checkpointing), mixed precision (--amp) and compilation (--compile)."""
import contextlib
import dataclasses
import inspect

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

from util import distributed
from util.util import UserError

AMP_MODES = ('none', 'bf16', 'fp16')
COMPILE_MODES = ('default', 'max-autotune-no-cudagraphs', 'reduce-overhead', 'max-autotune')
CUDA_GRAPH_MODES = ('reduce-overhead', 'max-autotune')


@dataclasses.dataclass
class Settings:
    """How inference networks run outside a command line (load_enhancer): the execution flags of test.py, under
    their names, so that prepare and autocast read these as they read a command's options."""
    amp: str = 'none'
    channels_last: bool = False
    compile: bool = False
    compile_mode: str = 'default'
    tile: int = 0
    eval: bool = False
    isTrain = False
    activation_checkpointing = False
    gpu_ids = ()

    def __post_init__(self):
        if self.amp not in AMP_MODES or self.compile_mode not in COMPILE_MODES:
            raise UserError('amp %r / compile_mode %r: amp is one of %s, compile_mode one of %s'
                            % (self.amp, self.compile_mode, ', '.join(AMP_MODES), ', '.join(COMPILE_MODES)))
        problem = tile_problem(self.tile, self.compile)
        if problem:
            raise UserError(problem)


def tile_problem(tile, compile):
    """What is wrong with --tile (given --compile), in a line, or None (test.py's options and Settings alike)."""
    if not (type(tile) is int and tile >= 0):
        return '--tile %r: give the band size in pixels (e.g. 512), or 0 to compute in memory' % tile
    if tile and compile:
        return '--tile computes layer by layer outside the compiled networks: leave out --compile'
    return None


def on_the_cpu(net):
    """net in the channels-last layout when its weights are on the CPU, where oneDNN computes faster in it (it
    reorders channels-first activations for every convolution); elsewhere net as it is."""
    if all(p.device.type == 'cpu' for p in net.parameters()):
        return net.to(memory_format=torch.channels_last)
    return net


def prepare(net, opt):
    """net as the options ask it to run: NHWC weights with --channels_last, and always for inference on the CPU,
    where oneDNN computes faster in that layout (convolutions then pass the layout on to their outputs); the blocks
    that declare `recompute` (ResNet blocks) recompute their activations in the backward pass with
    --activation_checkpointing (training only); compiled in place with --compile (its state_dict keys stay those of
    the eager network); under torchrun SyncBatchNorm for --norm batch and, for training, DistributedDataParallel;
    DataParallel over --gpu_ids 0,1,... in one process (the options refuse it with --compile)."""
    if opt.channels_last:
        net = net.to(memory_format=torch.channels_last)
    elif not opt.isTrain:
        net = on_the_cpu(net)
    for block in net.modules():
        if hasattr(block, 'recompute'):
            block.recompute = opt.isTrain and opt.activation_checkpointing
    if opt.compile:
        # Inference shapes are symbolic from the first call, so that every image size shares one compilation;
        # training starts specialised to its crop size and turns dynamic only if another size comes.
        net.compile(mode=opt.compile_mode, dynamic=None if opt.isTrain else True)
    if distributed.world_size() > 1:
        net = nn.SyncBatchNorm.convert_sync_batchnorm(net)  # a copy only where the network has batch norms
        return data_parallel(net, opt.gpu_ids) if opt.isTrain else net
    return nn.DataParallel(net, opt.gpu_ids) if len(opt.gpu_ids) > 1 else net


def data_parallel(net, gpu_ids):
    """net as a DistributedDataParallel module: rank 0's weights at the start, gradients averaged over the processes
    during the backward pass. Parameters that get no gradient in a step are found and left alone, as in one
    process; buffers are not synchronised at each forward, so that rank 0 alone can validate."""
    sync = ({'forward_sync_buffers': False} if 'forward_sync_buffers' in inspect.signature(DDP).parameters
            else {'broadcast_buffers': False})  # the newer name, from PyTorch 2.14
    return DDP(net, device_ids=gpu_ids or None, find_unused_parameters=True, **sync)


def unwrap(net):
    """The network inside a DataParallel or DistributedDataParallel wrapper."""
    return net.module if isinstance(net, (nn.DataParallel, DDP)) else net


def autocast(opt, device):
    """The autocast context of --amp; none at all for --amp none (older PyTorch rejects autocast on MPS even when
    disabled)."""
    dtype = {'bf16': torch.bfloat16, 'fp16': torch.float16}.get(opt.amp)
    return torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()


def check_compile(opt, device):
    """Raise a one-line UserError when --compile cannot work on device: CUDA graphs without CUDA, or no C++
    compiler for the CPU code torch.compile generates."""
    if opt.compile_mode in CUDA_GRAPH_MODES and device.type != 'cuda':
        raise UserError('--compile_mode %s uses CUDA graphs, but this run is on %s: use --compile_mode default'
                        % (opt.compile_mode, device.type))
    if device.type != 'cpu':
        return
    from torch._inductor import cpp_builder
    try:
        cpp_builder.get_cpp_compiler()
    except Exception:
        raise UserError('--compile on the CPU needs a C++ compiler (g++ or clang++, or one named by $CXX); install '
                        'one or leave out --compile') from None


def mark_step(opt):
    """Tell compiled CUDA graphs (--compile_mode reduce-overhead | max-autotune) that a new step begins, so they may
    reuse the memory of the previous step's outputs."""
    if opt.compile and opt.compile_mode in CUDA_GRAPH_MODES:
        torch.compiler.cudagraph_mark_step_begin()
