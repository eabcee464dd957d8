"""Score enhanced images: PSNR, SSIM and LPIPS against ground truth paired by file stem, NIQE (no reference) and
optionally LOE against the low-light inputs.

    python scripts/evaluate.py results/LSRW/test_latest --gt dataset/testB
    python scripts/evaluate.py my_outputs/                      # NIQE only
    python scripts/evaluate.py results/LSRW/test_latest --gt dataset/testB --loe --ssim uniform

Writes metrics.csv (one row per image and a mean row) and metrics.json beside the images, and puts the table of
means on the results page (index.html) when the folder is a test.py result.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from util.evaluation import evaluate  # noqa: E402
from util import metrics  # noqa: E402
from util.util import command  # noqa: E402


@command
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('results', help="enhanced images: test.py's results/<name>/test_<epoch> folder, its "
                                        "images/ folder (<stem>_fake_B.png), or any folder of images")
    parser.add_argument('--gt', help='ground-truth folder; files are paired by stem (low.png <-> low_fake_B.png)')
    parser.add_argument('--inputs', help="low-light inputs for LOE (default: test.py's <stem>_real_A.png copies)")
    parser.add_argument('--ssim', default='gaussian', choices=sorted(metrics.SSIM_MODES),
                        help='gaussian: 11x11 Gaussian window, sigma 1.5, population covariances (Wang et al.); '
                             "uniform: 7x7 uniform window, sample covariances (scikit-image's defaults)")
    parser.add_argument('--loe', action='store_true', help='also compute the lightness order error (slow)')
    parser.add_argument('--no_niqe', action='store_true', help='skip NIQE')
    parser.add_argument('--niqe_channel', default='gray', choices=sorted(metrics.NIQE_CHANNELS),
                        help="what NIQE sees: gray (MATLAB's rgb2gray, as the MATLAB release of NIQE) or y (the luma of "
                             "ITU-R BT.601, as BasicSR's calculate_niqe(convert_to='y'), which many low-light papers "
                             'report)')
    parser.add_argument('--no_lpips', action='store_true', help='skip LPIPS')
    parser.add_argument('--device', default='cpu', help='device for LPIPS (cpu, cuda, mps)')
    args = parser.parse_args(argv)
    summary = evaluate(args.results, args.gt, args.inputs, args.ssim, args.loe,
                       None if args.no_niqe else args.niqe_channel, not args.no_lpips, args.device)
    return 1 if summary['skipped'] else 0


if __name__ == '__main__':
    sys.exit(main())
