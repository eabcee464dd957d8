"""Enhance every image of <dataroot>/testA: python test.py --dataroot ./dataset --name LSRW --preprocess=none

Loads <checkpoints_dir>/<name>/<epoch>_net_{G_A,Pre,H}.pth and writes
<results_dir>/<name>/test_<epoch>/images/<stem>_fake_B.png (and <stem>_real_A.png) with an index.html showing
each input beside its output. No testB, no CLIP weights and no GPU are needed. --metrics scores the results
(against testB when it exists) and adds the table to the page.
"""
import os
import sys

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from data import create_dataset
from models import create_model
from models.inference import Enhancer
from options.recorded import ARCHITECTURE_FLAGS, saved_architecture
from options.test_options import TestOptions
from util import runtime
from metrics.evaluation import evaluate
from util.html import HTML
from util.images import output_names, save_image, to_uint8
from util.locks import FolderLock
from util.util import UserError, command, writable_folder

# what the results page calls each image (the files keep the official names)
CAPTIONS = {'real_A': 'input', 'fake_B': 'enhanced'}
OUT_OF_MEMORY_HINT = 'try --tile 512, --amp bf16, a smaller copy (--preprocess scale_width --load_size N) or the CPU'


def save_images(webpage, visuals, stem, aspect_ratio=1.0, width=256):
    """Save each visual as images/<stem>_<label>.png and add them to the page as one row."""
    ims, txts = [], []
    for label, image in visuals.items():
        array = to_uint8(image)[0]
        if aspect_ratio != 1.0:
            h, w = array.shape[:2]
            array = np.asarray(Image.fromarray(array).resize((int(w * aspect_ratio), h), Image.BICUBIC))
        name = '%s_%s.png' % (stem, label)
        save_image(array, os.path.join(webpage.get_image_dir(), name))
        ims.append('images/' + name)
        txts.append(CAPTIONS.get(label, label))
    webpage.add_header(stem)
    webpage.add_images(ims, txts, ims, width=width)


def run(options, opt):
    opt.serial_batches = True
    web_dir = os.path.join(opt.results_dir, opt.name, '%s_%s' % (opt.phase, opt.epoch))
    if opt.load_iter > 0:
        web_dir = '%s_iter%d' % (web_dir, opt.load_iter)
    writable_folder(web_dir, '--results_dir %s' % opt.results_dir)
    with FolderLock(web_dir, '.results.lock', 'test.py run', 'another --results_dir'):
        enhance_into(web_dir, options, opt)


def enhance_into(web_dir, options, opt):
    """Enhance the test images into web_dir (held by this run): images, page, options and, with --metrics,
    scores."""
    options.save(opt, web_dir)  # beside the results, so that released checkpoints can stay read-only
    dataset = create_dataset(opt)
    model = create_model(opt)
    model.setup(opt)
    if opt.eval:
        model.eval()
    enhancer = Enhancer(model, opt.tile, OUT_OF_MEMORY_HINT)
    webpage = HTML(web_dir, 'Experiment = %s, Phase = %s, Epoch = %s' % (opt.name, opt.phase, opt.epoch))
    names = output_names(dataset.dataset.A_paths, dataset.dataset.dir_A)
    written, skipped = enhance_all(enhancer, dataset, webpage, opt, names)
    page = webpage.save()
    print('enhanced %d image(s) into %s' % (len(written), webpage.get_image_dir()))
    if opt.metrics:
        truths, by_stem = os.path.join(opt.dataroot, opt.phase + 'B'), dataset.dataset.B_by_stem
        paired = set(written) & set(by_stem)
        if by_stem and not paired:
            print('warning: %s holds %d image(s), none named like an input (e.g. %s, %s): no PSNR, SSIM or LPIPS; '
                  'name ground truth like its input' % (truths, len(by_stem), next(iter(written), '-'),
                                                         next(iter(by_stem))), file=sys.stderr)
        evaluate(web_dir, truths if paired else None, device=opt.device, stems=written)
    print('results page: %s' % page)
    if skipped:
        raise UserError('%d image(s) could not be enhanced and were skipped' % len(skipped))


def enhance_all(enhancer, dataset, webpage, opt, names):
    """Enhance at most --num_test images, saving each under its name in names ({path: name}); an unreadable
    image, or one too large for the GPU, is named and skipped. Returns (names written, paths skipped)."""
    total = int(min(len(dataset), opt.num_test))
    written, skipped = [], []
    with tqdm(total=total, desc='enhancing', unit='img', dynamic_ncols=True, file=sys.stdout,
              mininterval=0.1 if sys.stdout.isatty() else 30) as bar:
        for data in dataset:
            for path, error in data['errors']:
                tqdm.write('skipped %s: %s' % (path, error), file=sys.stderr)
                skipped.append(path)
            if 'A' not in data:
                continue
            fake_B = enhancer.attempt(data['A'], data['A_paths'])
            if fake_B is None:
                skipped += data['A_paths']
                continue
            for i, path in enumerate(data['A_paths'][:total - len(written)]):
                visuals = {'real_A': data['A'][i:i + 1], 'fake_B': fake_B[i:i + 1]}
                save_images(webpage, visuals, names[path], opt.aspect_ratio, opt.display_winsize)
                written.append(names[path])
                bar.update(1)
            if len(written) >= total:
                break
    return written, skipped


def parse_with_recorded_architecture(argv):
    """(options, opt) for argv, the architecture flags not given there taken from the run's record (train_opt.json
    or .txt in <checkpoints_dir>/<name>), saying which ones changed."""
    options = TestOptions()
    opt = options.parse(argv)
    folder = os.path.join(opt.checkpoints_dir, opt.name)
    recorded = saved_architecture(folder)
    if not recorded:
        return options, opt
    given = vars(opt).copy()
    options = TestOptions()
    opt = options.parse(recorded + argv)
    changed = [flag for flag in ARCHITECTURE_FLAGS if getattr(opt, flag) != given[flag]]
    if changed:
        print('architecture recorded in %s: %s (flags given on the command line win)'
              % (folder, ', '.join('%s %s' % (flag, getattr(opt, flag)) for flag in changed)))
    return options, opt


@command
def main(argv=None):
    options, opt = parse_with_recorded_architecture(sys.argv[1:] if argv is None else list(argv))
    opt = runtime.setup(opt)
    with torch.inference_mode():
        run(options, opt)


if __name__ == '__main__':
    main()
