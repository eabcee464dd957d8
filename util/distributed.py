"""torch.distributed set-up for runs launched by torchrun: one process per GPU (NCCL) or per CPU worker (gloo)."""
import os

import torch
import torch.distributed as dist

from util.util import UserError


def launched_by_torchrun():
    return int(os.environ.get('WORLD_SIZE', '1')) > 1


def init(use_cuda):
    """Join the process group torchrun describes; returns the local rank."""
    local_rank = int(os.environ.get('LOCAL_RANK', '0'))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group('nccl' if use_cuda else 'gloo')
    return local_rank


def rank():
    return dist.get_rank() if dist.is_initialized() else int(os.environ.get('RANK', '0'))


def world_size():
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main():
    return rank() == 0


def barrier():
    if dist.is_initialized():
        dist.barrier()


def broadcast_object(obj):
    """Rank 0's obj on every rank."""
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, 0)
    return box[0]


def main_only(function):
    """function() on rank 0, whose result it returns (None on the other ranks); the other ranks wait for it. A
    UserError there ends every rank: rank 0 raises it, the others exit with status 1."""
    result, error = None, None
    if is_main():
        try:
            result = function()
        except UserError as exc:
            error = str(exc)
    error = broadcast_object(error)
    if error is not None:
        if not is_main():
            raise SystemExit(1)
        raise UserError(error)
    return result


def any_rank(flag):
    """Whether flag is true on any rank (every rank must call this at the same point)."""
    if not dist.is_initialized():
        return flag
    device = torch.device('cuda', torch.cuda.current_device()) if dist.get_backend() == 'nccl' else None
    value = torch.tensor([float(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def parameters_agree(modules):
    """Whether every rank holds the same parameters (compares a checksum with rank 0's)."""
    if not dist.is_initialized():
        return True
    total = sum(p.detach().double().sum() * (i + 1) for module in modules
                for i, p in enumerate(module.parameters()))
    checksum = total.reshape(1).to(next(modules[0].parameters()).device)
    reference = checksum.clone()
    dist.broadcast(reference, 0)
    agree = torch.tensor([float(torch.equal(checksum, reference))], device=checksum.device)
    dist.all_reduce(agree, op=dist.ReduceOp.MIN)
    return bool(agree.item())


def cleanup():
    if dist.is_initialized():
        dist.destroy_process_group()
