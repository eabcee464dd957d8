"""Unpaired training images: <dataroot>/trainA (low-light) and <dataroot>/trainB (normal-light)."""
import os
import sys

from util.images import load_rgb
from util.util import UserError
from .base_dataset import BaseDataset, get_transform, item_rng, loaded_size
from .image_folder import make_dataset


MAX_UNREADABLE = 0.1


class UnalignedDataset(BaseDataset):
    """Each item pairs the index-th A image with a random B image (the index-th with --serial_batches).

    Items are fetched by key (seed, epoch, index): all random choices come from that key. An unreadable image is
    skipped with a warning (the next image of its folder is used); more than 10% unreadable is an error.
    """

    def __init__(self, opt):
        BaseDataset.__init__(self, opt)
        self.dir_A = os.path.join(opt.dataroot, opt.phase + 'A')
        self.dir_B = os.path.join(opt.dataroot, opt.phase + 'B')
        self.A_paths = make_dataset(self.dir_A, opt.max_dataset_size, 'the low-light training images')
        self.B_paths = make_dataset(self.dir_B, opt.max_dataset_size, 'the normal-light training images')
        self.transform = get_transform(opt)
        self.unreadable = set()

    def check_uncropped_sizes(self, multiple):
        """Without cropping (train.py calls this), the training images must all come out at one size, with sides
        multiples of what the generators need (multiple: 4 as they downsample twice, 128 or 256 for the U-Nets) and
        at least 8 (real_B is multiplied by real_A's mask): refuse at the start, naming the sizes, rather than fail on
        some later step."""
        sizes = {}
        for path in self.A_paths + self.B_paths:
            size = loaded_size(path, self.opt)
            if size:  # an unreadable file is skipped with a warning when it is loaded
                sizes.setdefault(size, path)
        bad = [size for size in sizes if size[0] % multiple or size[1] % multiple or min(size) < 8]
        if len(sizes) > 1 or bad:
            examples = ', '.join('%s %dx%d' % (path, w, h) for (w, h), path in list(sizes.items())[:3])
            raise UserError('--preprocess %s: without a crop every training image must come out at one size, with '
                            'sides that are multiples of %d (for --netG %s) and at least 8 (here: %s); use '
                            '--preprocess resize_and_crop or crop, or resize the images first'
                            % (self.opt.preprocess, multiple, self.opt.netG, examples))

    def __getitem__(self, key):
        index = key[-1] if isinstance(key, tuple) else key
        rng = item_rng(key)
        index_B = index if self.opt.serial_batches else rng.randrange(len(self.B_paths))
        A, A_path = self.load(self.A_paths, index, rng)
        B, B_path = self.load(self.B_paths, index_B, rng)
        return {'A': A, 'B': B, 'A_paths': A_path, 'B_paths': B_path}

    def load(self, paths, index, rng):
        """The transformed image at index (modulo the folder size), or the next readable one."""
        for step in range(len(paths)):
            path = paths[(index + step) % len(paths)]
            if path in self.unreadable:
                continue
            try:
                return self.transform(load_rgb(path), rng), path
            except Exception as exc:
                self.unreadable.add(path)
                print('warning: skipping unreadable image %s (%s: %s)' % (path, exc.__class__.__name__, exc),
                      file=sys.stderr)
                if len(self.unreadable) > MAX_UNREADABLE * (len(self.A_paths) + len(self.B_paths)):
                    raise UserError('%d unreadable images (more than %d%%) in %s and %s; fix or remove them'
                                    % (len(self.unreadable), MAX_UNREADABLE * 100, self.dir_A, self.dir_B))
        raise UserError('%s: no readable image' % os.path.dirname(paths[0]))

    def __len__(self):
        return max(len(self.A_paths), len(self.B_paths))
