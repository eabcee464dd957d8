"""Enhance low-light photos with a trained NeRCo: one image, several, or folders (no dataset layout needed).

    python scripts/enhance.py photo.jpg --checkpoints saves/LSRW --out enhanced/
    python scripts/enhance.py dark_folder/ more.png --checkpoints saves/LSRW --epoch 200 --out enhanced/ --device cuda

Each output is <out>/<stem>.png at its input's exact size. The architecture flags recorded in the folder's
train_opt.txt (--ngf, --netG, --norm) are used; extra test.py flags can follow --options.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from data.image_folder import is_image_file, load_rgb  # noqa: E402
from models import load_enhancer  # noqa: E402
from util.util import UserError, out_of_memory, save_image  # noqa: E402


def collect(inputs):
    """Image files named directly or found in the folders given (recursively), in order."""
    paths = []
    for item in inputs:
        if os.path.isdir(item):
            paths += sorted(os.path.join(root, f) for root, _, files in os.walk(item) for f in files
                            if is_image_file(f))
        elif os.path.isfile(item):
            paths.append(item)
        else:
            raise UserError('%s: no such file or folder' % item)
    if not paths:
        raise UserError('no images found in %s' % ', '.join(inputs))
    stems = {}
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem in stems:
            raise UserError('%s and %s would both be written as %s.png; enhance them into different --out folders'
                            % (stems[stem], path, stem))
        stems[stem] = path
    return stems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('inputs', nargs='+', help='image files and/or folders of images')
    parser.add_argument('--checkpoints', required=True, help='folder with <epoch>_net_{G_A,Pre,H}.pth, e.g. saves/LSRW')
    parser.add_argument('--out', required=True, help='folder for the enhanced images')
    parser.add_argument('--epoch', default='latest', help='which checkpoint: latest or an epoch number')
    parser.add_argument('--device', default='cpu', help='cpu, cuda, cuda:1 or mps')
    parser.add_argument('--options', nargs=argparse.REMAINDER, default=[], help='further test.py flags')
    args = parser.parse_args(argv)
    try:
        images = collect(args.inputs)
        enhance = load_enhancer(args.checkpoints, args.epoch, args.device, args.options)
        os.makedirs(args.out, exist_ok=True)
    except UserError as exc:
        sys.exit('error: %s' % exc)
    except OSError as exc:
        sys.exit('error: --out %s: %s' % (args.out, exc.strerror))
    skipped = 0
    for stem, path in tqdm(images.items(), desc='enhancing', unit='img', file=sys.stdout, dynamic_ncols=True):
        try:
            image = load_rgb(path)
        except Exception as exc:
            tqdm.write('skipped %s: %s: %s' % (path, exc.__class__.__name__, exc), file=sys.stderr)
            skipped += 1
            continue
        try:
            enhanced = enhance(np.asarray(image))
        except torch.cuda.OutOfMemoryError:
            tqdm.write(out_of_memory(path, image.height, image.width), file=sys.stderr)
            torch.cuda.empty_cache()
            skipped += 1
            continue
        except UserError as exc:
            sys.exit('error: %s' % exc)
        save_image(enhanced, os.path.join(args.out, stem + '.png'))
    print('enhanced %d image(s) into %s' % (len(images) - skipped, args.out))
    if skipped:
        sys.exit('error: %d image(s) could not be enhanced and were skipped' % skipped)
    return 0


if __name__ == '__main__':
    sys.exit(main())
