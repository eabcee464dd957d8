"""Score enhanced images: PSNR, SSIM and LPIPS against ground truth paired by file stem, NIQE (no reference) and
optionally LOE against the low-light inputs.

    python scripts/evaluate.py results/LSRW/test_latest --gt dataset/testB
    python scripts/evaluate.py my_outputs/                      # NIQE only
    python scripts/evaluate.py results/LSRW/test_latest --gt dataset/testB --loe --ssim uniform
    python scripts/evaluate.py results/LSRW/test_latest other_method/ --gt dataset/testB --out comparison/
    python scripts/evaluate.py night_enhanced.mp4 night_smoothed.mp4 --video night.mp4     # flicker of videos

Writes metrics.csv (one row per image and a mean row) and metrics.json beside the images, and puts the table of
means on the results page (index.html) when the folder is a test.py result. With several folders (this model's and
other methods' outputs, named alike), it also writes one table (comparison.csv, comparison.md: a row per folder,
a column per metric) and a page (index.html) showing each image across all folders with its metrics into --out.
With --video, the results are enhanced videos of that input clip, and their flicker is printed (metrics/flicker.py).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from metrics.evaluation import check_comparison_folder, compare, evaluate  # noqa: E402
from metrics.flicker import flicker, luma_frames  # noqa: E402
from metrics import scores  # noqa: E402
from util.util import command  # noqa: E402


@command
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('results', nargs='+', help="enhanced images: test.py's results/<name>/test_<epoch> folder, "
                                                   "its images/ folder (<stem>_fake_B.png), or any folder of images; "
                                                   'several to compare them')
    parser.add_argument('--out', default='comparison', help='where the comparison of several folders goes')
    parser.add_argument('--gt', help='ground-truth folder; files are paired by stem (low.png <-> low_fake_B.png)')
    parser.add_argument('--inputs', help="low-light inputs for LOE (default: test.py's <stem>_real_A.png copies)")
    parser.add_argument('--ssim', default='gaussian', choices=sorted(scores.SSIM_MODES),
                        help='gaussian: 11x11 Gaussian window, sigma 1.5, population covariances (Wang et al.); '
                             "uniform: 7x7 uniform window, sample covariances (scikit-image's defaults)")
    parser.add_argument('--loe', action='store_true', help='also compute the lightness order error (slow)')
    parser.add_argument('--no_niqe', action='store_true', help='skip NIQE')
    parser.add_argument('--niqe_channel', default='gray', choices=sorted(scores.NIQE_CHANNELS),
                        help="what NIQE sees: gray (MATLAB's rgb2gray, as the MATLAB release of NIQE) or y (the luma "
                             "of ITU-R BT.601, as BasicSR's calculate_niqe(convert_to='y'), which many low-light "
                             'papers report)')
    parser.add_argument('--no_lpips', action='store_true', help='skip LPIPS')
    parser.add_argument('--device', default='cpu', help='device for LPIPS (cpu, cuda, mps)')
    parser.add_argument('--video', metavar='INPUT',
                        help='the results are enhanced videos of the clip INPUT: print how much flicker each adds '
                             '(1.0: none; static_flicker: over the pixels static in INPUT)')
    args = parser.parse_args(argv)
    if args.video:
        reference = luma_frames(args.video)
        for path in args.results:
            ratios = flicker(luma_frames(path), reference)
            print('%s: %s' % (path, ', '.join('%s %s' % (k, 'n/a' if v is None else '%.3f' % v)
                                              for k, v in ratios.items())))
        print('flicker: how much the brightness changes from frame to frame in the video, over how much it does in '
              '%s (1.0: the enhancement adds no flicker; above: it adds some; below: steadier than the input); '
              'static_flicker: the same over the pixels that stay still in %s' % (args.video, args.video))
        return 0
    if len(args.results) > 1:
        check_comparison_folder(args.out)
    runs = {}
    for folder in args.results:
        runs[method_name(folder, runs)] = evaluate(folder, args.gt, args.inputs, args.ssim, args.loe,
                                                   None if args.no_niqe else args.niqe_channel, not args.no_lpips,
                                                   args.device)
    if len(runs) > 1:
        print('comparison: %s' % compare(runs, args.out))
    return 1 if any(run['skipped'] for run in runs.values()) else 0


def method_name(folder, taken):
    """A short name for a result folder: its name, with its parent's for test.py's test_<epoch> folders (and the
    whole path where that is still taken)."""
    parts = os.path.normpath(folder).split(os.sep)
    name = '/'.join(parts[-2:]) if parts[-1].startswith('test_') or parts[-1] == 'images' else parts[-1]
    return os.path.normpath(folder) if name in taken else name


if __name__ == '__main__':
    sys.exit(main())
