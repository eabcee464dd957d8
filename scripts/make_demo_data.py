"""Make a small offline demo dataset from scikit-image's bundled photographs.

Low-light versions are simulated (gamma, gain, Poisson-Gaussian noise) into trainA and testA; other photos, at
normal light, go to trainB (unpaired), and the originals of the test photos to testB (ground truth).

    python scripts/make_demo_data.py --out demo/dataset          (what make demo does)
    python scripts/make_demo_data.py --out /tmp/nerco_data && python train.py --dataroot /tmp/nerco_data ...
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import data  # noqa: E402

from util.images import find_images, save_image  # noqa: E402
from util.util import UserError, command, writable_folder  # noqa: E402

TRAIN_LOW = ('astronaut', 'immunohistochemistry', 'motorcycle_left')
TRAIN_NORMAL = ('chelsea', 'motorcycle_right', 'colorwheel')
TEST = ('rocket', 'coffee')


def photo(name, max_side):
    if hasattr(data, name):
        image = getattr(data, name)()
    else:
        image = np.asarray(Image.open(os.path.join(data.data_dir, name + '.png')))
    image = Image.fromarray(image[..., :3])
    image.thumbnail((max_side, max_side), Image.BICUBIC)
    return image


def darken(image, rng, gamma=2.2, gain=0.25, peak=120.0, read_noise=0.01):
    """Simulated low light: x -> gain * x^gamma, then shot noise at `peak` photons and Gaussian read noise."""
    x = np.asarray(image, dtype=np.float64) / 255.0
    x = gain * x ** gamma
    x = rng.poisson(x * peak) / peak + rng.normal(0.0, read_noise, x.shape)
    return Image.fromarray(np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8))


@command
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='demo/dataset', help='dataset root to create')
    parser.add_argument('--max_side', type=int, default=256, help='longest side of the demo images')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    folders = {name: os.path.join(args.out, name) for name in ('trainA', 'trainB', 'testA', 'testB')}
    own = {'trainA': TRAIN_LOW, 'trainB': TRAIN_NORMAL, 'testA': TEST, 'testB': TEST}
    for sub, folder in folders.items():  # demo images among a real data set's would train on both
        others = sorted({os.path.basename(path) for path in find_images(folder, recursive=False)} -
                        {name + '.png' for name in own[sub]}) if os.path.isdir(folder) else []
        if others:
            raise UserError('--out %s: %s holds other images (%s); choose a new or empty --out for the demo data'
                            % (args.out, folder, ', '.join(others[:3]) + (', ...' if len(others) > 3 else '')))
    for folder in folders.values():
        writable_folder(folder, '--out %s' % args.out)

    def save(image, folder, name):  # atomically: a full disk leaves no half-written image
        save_image(np.asarray(image), os.path.join(folders[folder], name + '.png'))
    for name in TRAIN_LOW:
        save(darken(photo(name, args.max_side), rng), 'trainA', name)
    for name in TRAIN_NORMAL:
        save(photo(name, args.max_side), 'trainB', name)
    for name in TEST:
        image = photo(name, args.max_side)
        save(darken(image, rng), 'testA', name)
        save(image, 'testB', name)
    print('demo dataset: %s (%d low-light / %d normal-light training images, %d test images)'
          % (args.out, len(TRAIN_LOW), len(TRAIN_NORMAL), len(TEST)))


if __name__ == '__main__':
    main()
