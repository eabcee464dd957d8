"""Lay out LOL or LSRW as NeRCo's dataroot: trainA (low), trainB (normal light), testA (low), testB (ground truth).

    python scripts/prepare_dataset.py --lol  path/to/LOL  --out ./dataset     # our485/{low,high}, eval15/{low,high}
    python scripts/prepare_dataset.py --lol  path/to/LOL-v2/Real_captured --out ./dataset  # Train, Test/{Low,Normal}
    python scripts/prepare_dataset.py --lsrw path/to/LSRW --out ./dataset     # {Training data,Eval}/{Huawei,Nikon}/{low,high}

Every low/high folder pair under ROOT is used; pairs under a folder whose name contains "eval" or "test" form the
test split, the others the training split. With several pairs in one split (LSRW's two cameras) file names are
prefixed with the pair's folder (Huawei_1.jpg), so testA and testB still match by name. High images named unlike
their low ones pair by the number in their names (LOL-v2 Real_captured: normal00690.png becomes testB/low00690.png).
Files are symlinked unless --copy is given.
"""
import argparse
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from util.images import find_images  # noqa: E402
from util.util import UserError, command  # noqa: E402

LOW, HIGH = 'low', ('high', 'normal')
TEST_SPLIT = re.compile(r'eval|test', re.I)
LAYOUTS = {'lol': 'our485/low, our485/high, eval15/low and eval15/high (LOL), or Train/{Low,Normal} and '
                  'Test/{Low,Normal} (LOL-v2)',
           'lsrw': '"Training data"/{Huawei,Nikon}/{low,high} and Eval/{Huawei,Nikon}/{low,high}'}


def find_pairs(root):
    """[(split, low folder, high folder)] for every folder under root holding both low and high."""
    pairs = []
    for folder, subfolders, _ in os.walk(root):
        names = {name.lower(): name for name in subfolders}
        high = next((names[h] for h in HIGH if h in names), None)
        if LOW in names and high:
            split = 'test' if TEST_SPLIT.search(os.path.relpath(folder, root)) else 'train'
            pairs.append((split, os.path.join(folder, names[LOW]), os.path.join(folder, high)))
    return sorted(pairs)


def number(path):
    digits = re.findall(r'\d+', os.path.splitext(os.path.basename(path))[0])
    return int(digits[-1]) if digits else None


def paired_names(low, high, layout, root):
    """{high image: the name it gets}: its own where the low and high folders share file names (LOL, LSRW, LOL-v2
    Synthetic), else that of the low image with the same number (LOL-v2 Real_captured: low00690.png and
    normal00690.png), with its own extension. A UserError when the folders pair neither way."""
    lows, highs = find_images(low, recursive=False), find_images(high, recursive=False)
    stems = {os.path.splitext(os.path.basename(p))[0] for p in lows}
    if all(os.path.splitext(os.path.basename(p))[0] in stems for p in highs):
        return {p: os.path.basename(p) for p in highs}
    by_number = {number(p): p for p in lows}
    if None not in by_number and len(by_number) == len(lows) and all(number(p) in by_number for p in highs):
        return {p: os.path.splitext(os.path.basename(by_number[number(p)]))[0] + os.path.splitext(p)[1]
                for p in highs}
    example = next((p for p in highs if number(p) not in by_number), highs[0] if highs else high)
    raise UserError('--%s %s: %s pairs with no image of %s by name or by number; expected %s, each high image named '
                    'like its low one (or with the same number, as LOL-v2\'s low00690.png and normal00690.png)'
                    % (layout, root, example, low, LAYOUTS[layout]))


def prepare(root, out, layout, copy=False):
    if os.path.exists(out) and not os.path.isdir(out):
        raise UserError('--out %s: is a file, not a folder; choose an empty folder' % out)
    if not os.path.isdir(root):
        raise UserError('--%s %s: folder not found; it should hold %s' % (layout, root, LAYOUTS[layout]))
    pairs = find_pairs(root)
    splits = {split for split, _, _ in pairs}
    if splits != {'train', 'test'}:
        raise UserError('--%s %s: found %s; expected %s' % (
            layout, root, ', '.join(sorted(splits)) + ' split only' if splits else 'no low/high folders',
            LAYOUTS[layout]))
    for sub in ('trainA', 'trainB', 'testA', 'testB'):
        target = os.path.join(out, sub)
        if os.path.isdir(target) and os.listdir(target):
            raise UserError('--out %s: %s already holds files; choose an empty --out' % (out, target))
    counts = dict.fromkeys(('trainA', 'trainB', 'testA', 'testB'), 0)
    plan = []
    for split, low, high in pairs:
        shared = sum(s == split for s, _, _ in pairs) > 1
        prefix = os.path.basename(os.path.dirname(low)) + '_' if shared else ''
        lows = {path: os.path.basename(path) for path in find_images(low, recursive=False)}
        for side, files in (('A', lows), ('B', paired_names(low, high, layout, root))):
            for path, name in files.items():
                plan.append((os.path.abspath(path), os.path.join(out, split + side, prefix + name)))
                counts[split + side] += 1
    empty = [sub for sub, n in counts.items() if n == 0]
    if empty:
        raise UserError('--%s %s: no images for %s; expected %s' % (layout, root, ', '.join(empty),
                                                                         LAYOUTS[layout]))
    sources = {}
    for source, destination in plan:
        if destination in sources:
            raise UserError('--%s %s: %s and %s would both become %s (two low/high folders with the same name); '
                            'rename one of them' % (layout, root, sources[destination], source, destination))
        sources[destination] = source
    for index, (source, destination) in enumerate(plan):
        try:
            os.makedirs(os.path.dirname(destination), exist_ok=True)
            (shutil.copy2 if copy else os.symlink)(source, destination)
        except OSError as exc:  # what was written is removed (a partial copy would read as a corrupt image), so
            for _, written in plan[:index + 1]:  # that the same command works again once there is room
                if os.path.lexists(written):
                    os.remove(written)
            raise UserError('--out %s: cannot write %s (%s); no file of it is left in --out' % (
                out, destination, exc.strerror)) from None
    print(', '.join('%s %d' % item for item in counts.items()), '->', os.path.abspath(out))
    return counts


@command
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--lol', metavar='ROOT', help='LOL: our485/{low,high} (train), eval15/{low,high} (test)')
    source.add_argument('--lsrw', metavar='ROOT', help='LSRW: Huawei and Nikon low/high pairs, training and Eval')
    parser.add_argument('--out', required=True, help='the dataroot to create (trainA trainB testA testB)')
    parser.add_argument('--copy', action='store_true', help='copy the files instead of symlinking them')
    args = parser.parse_args(argv)
    layout = 'lol' if args.lol else 'lsrw'
    prepare(args.lol or args.lsrw, args.out, layout, args.copy)
    return 0


if __name__ == '__main__':
    sys.exit(main())
