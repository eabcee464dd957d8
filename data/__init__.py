"""Datasets: `--dataset_mode unaligned` finds class UnalignedDataset in data/unaligned_dataset.py."""
import importlib
import os

import torch.utils.data

from .base_dataset import BaseDataset


def find_dataset_using_name(dataset_name):
    """The BaseDataset subclass in data/<dataset_name>_dataset.py named <DatasetName>Dataset, case-insensitively."""
    try:
        module = importlib.import_module('data.%s_dataset' % dataset_name)
    except ModuleNotFoundError:
        raise ValueError('--dataset_mode %s: no file data/%s_dataset.py' % (dataset_name, dataset_name)) from None
    target = dataset_name.replace('_', '').lower() + 'dataset'
    for name, cls in vars(module).items():
        if name.lower() == target and isinstance(cls, type) and issubclass(cls, BaseDataset):
            return cls
    raise ValueError('data/%s_dataset.py defines no BaseDataset subclass named %s' % (dataset_name, target))


def get_option_setter(dataset_name):
    return find_dataset_using_name(dataset_name).modify_commandline_options


def create_dataset(opt):
    """The dataset named by --dataset_mode, wrapped in a DataLoader."""
    return DataLoader(opt)


class DataLoader:
    """Batches of the dataset, at most --max_dataset_size images per epoch."""

    def __init__(self, opt):
        self.opt = opt
        self.dataset = find_dataset_using_name(opt.dataset_mode)(opt)
        workers = min(int(opt.num_threads), os.cpu_count() or 1, len(self.dataset))
        self.dataloader = torch.utils.data.DataLoader(
            self.dataset, batch_size=opt.batch_size, shuffle=not opt.serial_batches, num_workers=workers,
            collate_fn=getattr(self.dataset, 'collate', None), persistent_workers=workers > 0)

    def load_data(self):
        return self

    def __len__(self):
        return int(min(len(self.dataset), self.opt.max_dataset_size))

    def __iter__(self):
        for i, batch in enumerate(self.dataloader):
            if i * self.opt.batch_size >= self.opt.max_dataset_size:
                break
            yield batch
