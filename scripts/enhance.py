"""Enhance low-light photos with a trained NeRCo: one image, several, or folders (no dataset layout needed).

    python scripts/enhance.py photo.jpg --checkpoints saves/LSRW --out enhanced/
    python scripts/enhance.py dark_folder/ more.png --checkpoints saves/LSRW --epoch 200 --out enhanced/ --device cuda

Each output is <out>/<stem>.png at its input's exact size. The architecture flags recorded in the folder's
train_opt.txt (--ngf, --netG, --norm) are used; extra test.py flags can follow --options. --checkpoints may also
be a Hub-layout folder or an ONNX file written by scripts/export.py (the ONNX file runs on onnxruntime).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from enhancer import load_enhancer  # noqa: E402
from models.inference import as_batch  # noqa: E402
from options.test_options import passed_on  # noqa: E402
from util.images import find_images, load_rgb, save_image  # noqa: E402
from util.util import UserError, command  # noqa: E402

OUT_OF_MEMORY_HINT = 'try --options --tile 512 (and --amp bf16 on a GPU), a smaller copy or --device cpu'


def plan(inputs, out, overwrite=False):
    """{output path: input path} for the image files named directly or found in the folders given (recursively),
    in order, each once. Two inputs that would share an output, an output that would replace an input, and (without
    overwrite) an existing file at an output are refused."""
    paths = []
    for item in inputs:
        if os.path.isdir(item):
            paths += find_images(item)
        elif os.path.isfile(item):
            paths.append(item)
        else:
            raise UserError('%s: no such file or folder' % item)
    if not paths:
        raise UserError('no images found in %s' % ', '.join(inputs))
    unique = {}
    for path in paths:
        unique.setdefault(os.path.realpath(path), path)  # an image named twice (or also found in a folder): once
    sources, paths = set(unique), list(unique.values())
    outputs = {}
    for path in paths:
        target = os.path.join(out, os.path.splitext(os.path.basename(path))[0] + '.png')
        if target in outputs:
            raise UserError('%s and %s would both be written as %s; enhance them into different --out folders'
                            % (outputs[target], path, target))
        if os.path.realpath(target) in sources:
            raise UserError('--out %s: the output %s would replace an input image; choose another --out folder'
                            % (out, target))
        outputs[target] = path
    existing = [target for target in outputs if os.path.exists(target)]
    if existing and not overwrite:
        raise UserError('--out %s: %s exists (%d output(s) would replace files); give --overwrite to replace them, '
                        'or choose another --out folder' % (out, existing[0], len(existing)))
    return outputs


def enhance_all(enhancer, outputs):
    """Enhance and save each image; an unreadable image, or one too large for the GPU, is named and skipped.
    Returns the number skipped."""
    skipped = 0
    for target, path in tqdm(outputs.items(), desc='enhancing', unit='img', file=sys.stdout, dynamic_ncols=True):
        try:
            image = load_rgb(path)
        except Exception as exc:
            tqdm.write('skipped %s: %s: %s' % (path, exc.__class__.__name__, exc), file=sys.stderr)
            skipped += 1
            continue
        batch, back = as_batch(np.asarray(image))
        enhanced = enhancer.attempt(batch, [path])
        if enhanced is None:
            skipped += 1
            continue
        save_image(back(enhanced), target)
    return skipped


@command
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('inputs', nargs='+', help='image files and/or folders of images')
    parser.add_argument('--checkpoints', required=True,
                        help='folder with <epoch>_net_{G_A,Pre,H}.pth (e.g. saves/LSRW), a Hub-layout folder or a '
                             '.onnx file')
    parser.add_argument('--out', required=True, help='folder for the enhanced images (never an input\'s own folder '
                                                     'when that would replace the input)')
    parser.add_argument('--epoch', default='latest',
                        help='which checkpoint: latest, best (the best validation score) or an epoch number')
    parser.add_argument('--device', default='cpu', help='cpu, cuda, cuda:1 or mps')
    parser.add_argument('--compile', action='store_true',
                        help='torch.compile the networks: pays off from a few dozen images (docs/PERFORMANCE.md)')
    parser.add_argument('--overwrite', action='store_true', help='replace files that already exist in --out')
    parser.add_argument('--options', nargs=argparse.REMAINDER, default=[], help='further test.py flags')
    argv = sys.argv[1:] if argv is None else argv
    for token in argv[:argv.index('--options') if '--options' in argv else len(argv)]:
        if token.startswith('-') and token != '-' and os.path.exists(token):
            parser.error('%s is a file, not a flag: write ./%s, or put -- before it' % (token, token))
    args = parser.parse_args(argv)
    outputs = plan(args.inputs, args.out, args.overwrite)
    architecture, settings = passed_on(['--compile'] * args.compile + args.options)
    enhancer = load_enhancer(args.checkpoints, args.epoch, args.device, OUT_OF_MEMORY_HINT, architecture, **settings)
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as exc:
        raise UserError('--out %s: %s' % (args.out, exc.strerror)) from None
    skipped = enhance_all(enhancer, outputs)
    print('enhanced %d image(s) into %s' % (len(outputs) - skipped, args.out))
    if skipped:
        raise UserError('%d image(s) could not be enhanced and were skipped' % skipped)
    return 0


if __name__ == '__main__':
    sys.exit(main())
