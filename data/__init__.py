"""Datasets: `--dataset_mode unaligned` finds class UnalignedDataset in data/unaligned_dataset.py."""
import os

import torch.utils.data

from util import distributed
from util.util import find_class

from .base_dataset import BaseDataset


def find_dataset_using_name(dataset_name):
    return find_class('data', dataset_name, 'dataset', BaseDataset, '--dataset_mode')


def get_option_setter(dataset_name):
    return find_dataset_using_name(dataset_name).modify_commandline_options


def create_dataset(opt):
    """An EpochLoader of the dataset named by --dataset_mode (CycleGAN's name for this function: it returns the
    loader, whose .dataset is the dataset)."""
    return EpochLoader(opt)


class EpochSampler(torch.utils.data.Sampler):
    """Yields keys (seed, epoch, index): a permutation of the first n indices drawn from (seed, epoch) when
    shuffling, in order otherwise. Under torchrun each process takes every world-th key of the same permutation
    (wrapped around so all get the same count), as DistributedSampler does. The first `skip` keys of this
    process are left out (to resume in the middle of an epoch)."""

    def __init__(self, n, shuffle, seed, rank=0, world=1):
        self.n, self.shuffle, self.seed, self.rank, self.world = n, shuffle, seed, rank, world
        self.per_rank = -(-n // world)
        self.epoch, self.skip = 0, 0

    def __iter__(self):
        order = list(range(self.n))
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
            order = torch.randperm(self.n, generator=generator).tolist()
        order = (order * self.world)[:self.per_rank * self.world][self.rank::self.world]
        return iter([(self.seed, self.epoch, i) for i in order][self.skip:])

    def __len__(self):
        return self.per_rank - self.skip


class SameSizeBatches(torch.utils.data.Sampler):
    """Batches of at most batch_size keys of a sampler whose images have the same size (sizes[index]), taken size
    by size in the order of each size's first image, so that images of several sizes can be batched."""

    def __init__(self, sampler, sizes, batch_size):
        self.sampler, self.sizes, self.batch_size = sampler, sizes, batch_size

    def groups(self):
        groups = {}
        for key in self.sampler:
            groups.setdefault(self.sizes[key[-1]], []).append(key)
        return groups.values()

    def __iter__(self):
        for keys in self.groups():
            for start in range(0, len(keys), self.batch_size):
                yield keys[start:start + self.batch_size]

    def __len__(self):
        return sum(-(-len(keys) // self.batch_size) for keys in self.groups())


class EpochLoader:
    """Batches of the dataset (torch's DataLoader over an EpochSampler), at most --max_dataset_size images per
    epoch, reproducible from (--seed, epoch); batches of a dataset that knows its image sizes (test images) hold
    images of one size."""

    def __init__(self, opt):
        self.opt = opt
        self.dataset = find_dataset_using_name(opt.dataset_mode)(opt)
        n = int(min(len(self.dataset), opt.max_dataset_size))
        seed = getattr(opt, 'seed', 0) or 0
        self.sampler = EpochSampler(n, not opt.serial_batches, seed, distributed.rank(), distributed.world_size())
        workers = min(int(opt.num_threads), os.cpu_count() or 1, n)
        # Each iterator draws a worker seed; from its own generator, so that starting an iterator after a resume
        # does not advance torch's global random state (which the training step draws from).
        batching = {'batch_size': opt.batch_size, 'sampler': self.sampler}
        if opt.batch_size > 1 and hasattr(self.dataset, 'sizes'):
            batching = {'batch_sampler': SameSizeBatches(self.sampler, self.dataset.sizes(), opt.batch_size)}
        self.dataloader = torch.utils.data.DataLoader(
            self.dataset, num_workers=workers, collate_fn=getattr(self.dataset, 'collate', None),
            persistent_workers=workers > 0, generator=torch.Generator().manual_seed(seed), **batching)

    def set_epoch(self, epoch, skip=0):
        """Draw the order of this epoch; leave out its first `skip` images."""
        self.sampler.epoch, self.sampler.skip = epoch, skip

    def __len__(self):
        """Images this process sees per epoch."""
        return self.sampler.per_rank

    def __iter__(self):
        return iter(self.dataloader)
