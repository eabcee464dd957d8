"""Unpaired training images: <dataroot>/trainA (low-light) and <dataroot>/trainB (normal-light)."""
import os
import random

from .base_dataset import BaseDataset, get_transform
from .image_folder import load_rgb, make_dataset


class UnalignedDataset(BaseDataset):
    """Each item pairs the index-th A image with a random B image (the index-th with --serial_batches)."""

    def __init__(self, opt):
        BaseDataset.__init__(self, opt)
        self.dir_A = os.path.join(opt.dataroot, opt.phase + 'A')
        self.dir_B = os.path.join(opt.dataroot, opt.phase + 'B')
        self.A_paths = make_dataset(self.dir_A, opt.max_dataset_size, 'the low-light training images')
        self.B_paths = make_dataset(self.dir_B, opt.max_dataset_size, 'the normal-light training images')
        self.transform = get_transform(opt)

    def __getitem__(self, index):
        A_path = self.A_paths[index % len(self.A_paths)]
        index_B = index % len(self.B_paths) if self.opt.serial_batches else random.randint(0, len(self.B_paths) - 1)
        B_path = self.B_paths[index_B]
        A, B = self.transform(load_rgb(A_path)), self.transform(load_rgb(B_path))
        return {'A': A, 'B': B, 'A_paths': A_path, 'B_paths': B_path}

    def __len__(self):
        return max(len(self.A_paths), len(self.B_paths))
