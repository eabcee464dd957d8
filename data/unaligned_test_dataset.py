"""Test images: <dataroot>/testA, each at its own size; <dataroot>/testB is optional ground truth, never required."""
import os

import torch

from util.util import UserError
from .base_dataset import BaseDataset, get_transform, item_rng, loaded_size
from util.images import images_by_stem, load_rgb
from .image_folder import make_dataset


class UnalignedTestDataset(BaseDataset):
    """Items hold 'A' (the image in [-1, 1]), 'A_paths', and 'B_paths': the testB file with the same stem, or ''.

    Images are resized only if --preprocess asks for it (resize_and_crop, scale_width...); with --preprocess none
    they keep their size exactly (the model pads them internally). An unreadable file yields an item with 'error'.
    """

    def __init__(self, opt):
        BaseDataset.__init__(self, opt)
        self.dir_A = os.path.join(opt.dataroot, opt.phase + 'A')
        self.A_paths = make_dataset(self.dir_A, opt.max_dataset_size, 'the low-light images to enhance')
        dir_B = os.path.join(opt.dataroot, opt.phase + 'B')
        self.B_by_stem = images_by_stem(dir_B) if os.path.isdir(dir_B) else {}
        self.transform = get_transform(opt, crop=False, flip=False)

    def __getitem__(self, key):
        index = key[-1] if isinstance(key, tuple) else key
        path = self.A_paths[index]
        item = {'A_paths': path, 'B_paths': self.B_by_stem.get(os.path.splitext(os.path.basename(path))[0], '')}
        try:
            item['A'] = self.transform(load_rgb(path), item_rng(key))
        except Exception as exc:
            item['error'] = '%s: %s' % (exc.__class__.__name__, exc)
        return item

    def __len__(self):
        return len(self.A_paths)

    def sizes(self):
        """The size of each image once loaded (None where the header cannot be read), for batching by size."""
        return [loaded_size(path, self.opt) for path in self.A_paths]

    @staticmethod
    def collate(items):
        """Stack the readable images of a batch (they must share a size); list the unreadable ones in 'errors'."""
        good = [item for item in items if 'error' not in item]
        batch = {'errors': [(item['A_paths'], item['error']) for item in items if 'error' in item],
                 'A_paths': [item['A_paths'] for item in good], 'B_paths': [item['B_paths'] for item in good]}
        if good:
            sizes = {tuple(item['A'].shape) for item in good}
            if len(sizes) > 1:
                raise UserError('--batch_size %d: images of different sizes in one batch (%s); use --batch_size 1'
                                % (len(items), ', '.join('%s %dx%d' % (item['A_paths'], item['A'].shape[2],
                                                                        item['A'].shape[1]) for item in good)))
            batch['A'] = torch.stack([item['A'] for item in good])
        return batch
