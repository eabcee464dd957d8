"""Where a command runs: the device that --gpu_ids asks for (CUDA, else MPS or CPU) and, under torchrun, the
process group. Called once by each entry point after its options are parsed."""
import os
import sys

import torch

from util import distributed
from util.util import UserError


def choose_device(requested):
    """(gpu_ids, device) for the requested CUDA ids: CUDA when asked for and present; otherwise MPS if present,
    else the CPU (with a warning when CUDA was asked for)."""
    if requested and torch.cuda.is_available():
        missing = [i for i in requested if i >= torch.cuda.device_count()]
        if missing:
            raise UserError('--gpu_ids %s: this machine has %d CUDA device(s)'
                            % (','.join(map(str, requested)), torch.cuda.device_count()))
        return requested, 'cuda:%d' % requested[0]
    if requested:
        mps = getattr(torch.backends, 'mps', None)
        device = 'mps' if mps is not None and mps.is_available() else 'cpu'
        print('warning: --gpu_ids %s: CUDA is not available, running on %s'
              % (','.join(map(str, requested)), device), file=sys.stderr)
        return [], device
    return [], 'cpu'


def named_device(name, flag='--device'):
    """The torch.device that name (cpu, cuda, cuda:1, mps) names, when this machine has it; otherwise a UserError
    naming flag."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UserError('%s %s: not a device; use cpu, cuda, cuda:1 or mps' % (flag, name)) from None
    if device.type == 'cuda' and (device.index or 0) >= torch.cuda.device_count():
        found = '%d CUDA device(s)' % torch.cuda.device_count() if torch.cuda.is_available() else 'no usable CUDA'
        raise UserError('%s %s: this machine has %s; use --device cpu' % (flag, name, found))
    mps = getattr(torch.backends, 'mps', None)
    if device.type == 'mps' and not (mps is not None and mps.is_available()):
        raise UserError('%s %s: MPS is not available here; use --device cpu' % (flag, name))
    if device.type not in ('cpu', 'cuda', 'mps'):
        raise UserError('%s %s: not supported; use cpu, cuda, cuda:1 or mps' % (flag, name))
    return device


def check_cpu_processes(opt, use_cuda):
    """Under torchrun without CUDA: say once (rank 0) that --gpu_ids asked for GPUs the processes will not have, and
    refuse --norm batch, whose statistics SyncBatchNorm shares over CUDA only (one line from rank 0; the other ranks
    exit with status 1)."""
    if use_cuda:
        return
    main = distributed.rank() == 0
    if opt.gpu_ids and main:
        print('warning: --gpu_ids %s: CUDA is not available; the %s torchrun processes run on the CPU (gloo)'
              % (','.join(map(str, opt.gpu_ids)), os.environ.get('WORLD_SIZE')), file=sys.stderr)
    if opt.norm == 'batch':
        if not main:
            raise SystemExit(1)
        raise UserError('--norm batch under torchrun shares batch statistics between the processes through CUDA '
                        '(SyncBatchNorm), and these run on the CPU: use --norm instance, or GPUs')


def setup(opt):
    """Set opt.gpu_ids (the GPUs this process uses) and opt.device; under torchrun, join the process group with one
    GPU per process. Does nothing when opt.device is already set. Returns opt."""
    if getattr(opt, 'device', None):
        return opt
    if distributed.launched_by_torchrun():
        use_cuda = bool(opt.gpu_ids) and torch.cuda.is_available()
        check_cpu_processes(opt, use_cuda)
        local_rank = distributed.init(use_cuda)
        opt.gpu_ids, opt.device = ([local_rank], 'cuda:%d' % local_rank) if use_cuda else ([], 'cpu')
    else:
        opt.gpu_ids, opt.device = choose_device(opt.gpu_ids)
    if opt.device.startswith('cuda'):
        if opt.amp == 'bf16' and not torch.cuda.is_bf16_supported():
            raise UserError('--amp bf16: %s has no bfloat16 support; use --amp fp16 or --amp none'
                            % torch.cuda.get_device_name(opt.device))
        torch.cuda.set_device(opt.device)
    return opt


def out_of_memory(error):
    """'GPU' or 'CPU' when error says that device ran out of memory, else None."""
    if isinstance(error, torch.cuda.OutOfMemoryError):
        return 'GPU'
    if isinstance(error, MemoryError) or isinstance(error, RuntimeError) and "can't allocate memory" in str(error):
        return 'CPU'
    return None
