"""Export a trained NeRCo's inference path (Pre, H, G_A) for use without the training code.

    python scripts/export.py --checkpoints saves/LSRW --format onnx --out nerco.onnx
    python scripts/export.py --checkpoints saves/LSRW --epoch 200 --format safetensors --out nerco-lsrw/

--checkpoints is a checkpoint folder (ours or the authors' latest_net_{G_A,Pre,H}.pth, with the architecture read
from its train_opt.txt / .json) or a Hub-layout folder. onnx writes one file: input "image" (N, 3, H, W) RGB in
[0, 1], output "enhanced" of the same shape, N, H and W dynamic; the export checks the file with onnx.checker and
prints onnxruntime's largest difference from PyTorch. safetensors writes config.json, model.safetensors and a
model card README.md, the Hugging Face Hub layout (load_enhancer, scripts/enhance.py and from_pretrained read it).
"""
import argparse
import datetime
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from enhancer import load_enhancer  # noqa: E402
from models import deployment  # noqa: E402
from options.recorded import recorded_options  # noqa: E402
from util.util import UserError, command, follow_umask  # noqa: E402

TOLERANCE = 1e-4  # onnxruntime against PyTorch, in [0, 1] units
HUB_FILES = ('config.json', 'model.safetensors', 'README.md')


def check_out(out, source, overwrite, fmt):
    """Refuse an --out that is the input, lies inside it, or exists (without --overwrite; an empty folder for the Hub
    layout is taken); with --overwrite, one that is not what an earlier export in format fmt wrote (a NeRCo ONNX
    file, a Hub folder of export files only). A folder for an ONNX file is refused naming a file in it."""
    real_out, real_source = os.path.realpath(out), os.path.realpath(source)
    if os.path.commonpath([real_out, real_source]) in (real_out, real_source):
        raise UserError('--out %s: would replace or lie inside the input %s; choose another --out' % (out, source))
    if not os.path.lexists(out):
        return
    if fmt == 'safetensors' and earlier_export(out) == 'an empty folder':
        return  # nothing there to lose (a folder made for the export)
    if not overwrite:
        if fmt == 'onnx' and os.path.isdir(out) and not os.path.islink(out):
            raise UserError('--out %s: a folder, and --format onnx writes one file: name it, e.g. --out %s'
                            % (out, os.path.join(out, 'nerco.onnx')))
        raise UserError('--out %s: exists; choose another --out or add --overwrite to replace it' % out)
    what = earlier_export(out)
    if what != fmt:
        raise UserError('--out %s: %s, not %s that scripts/export.py wrote, so --overwrite leaves it alone; choose '
                        'another --out' % (out, what if what not in FORMATS else FORMATS[what], FORMATS[fmt]))


FORMATS = {'onnx': 'an ONNX file', 'safetensors': 'a Hub folder'}


def earlier_export(path):
    """'onnx' or 'safetensors' when path is what an export in that format writes, else a few words on what it is."""
    if os.path.islink(path):
        return 'a link'
    if os.path.isdir(path):
        names = set(os.listdir(path))
        if 'config.json' in names and names <= set(HUB_FILES):
            return 'safetensors'
        return 'a folder holding %s' % ', '.join(sorted(names - set(HUB_FILES)) or sorted(names)) if names else \
            'an empty folder'
    if not os.path.isfile(path):
        return 'not a file or folder'
    import onnx
    try:
        graph = onnx.load(path, load_external_data=False).graph
    except Exception:
        return 'a file that is not an ONNX model'
    if [i.name for i in graph.input] == [deployment.ONNX_INPUT] and \
            [o.name for o in graph.output] == [deployment.ONNX_OUTPUT]:
        return 'onnx'
    return 'an ONNX model of something else'


def publish(temporary, out):
    """Move the finished export into place, with the modes the umask gives. What --overwrite allowed to replace is
    moved aside first (into the temporary export's folder) and deleted only once the new export is in place, so a
    failure on the way leaves the earlier export where it was."""
    follow_umask(temporary)
    earlier = None
    if os.path.lexists(out):
        earlier = os.path.join(os.path.dirname(temporary), 'earlier')
        os.replace(out, earlier)
    try:
        os.replace(temporary, out)
    except OSError:
        if earlier:
            os.replace(earlier, out)
        raise


def provenance(args):
    """Where the exported weights come from, for the model card: (what, value) pairs."""
    run = recorded_options(args.checkpoints)
    source = os.path.basename(os.path.realpath(args.checkpoints))
    pairs = [('checkpoints', '%s, epoch %s' % (source, args.epoch))]
    if run:
        pairs += [('trained on', str(run.get('dataroot', 'not recorded'))),
                  ('training', '%s + %s epochs (n_epochs + n_epochs_decay), ngf %s, netG %s' % tuple(
                      run.get(key, '?') for key in ('n_epochs', 'n_epochs_decay', 'ngf', 'netG')))]
    else:
        pairs.append(('trained on', "not recorded (no train_opt.json or .txt beside the weights, as with the "
                                    "authors' released checkpoints)"))
    return pairs + [('exported', '%s by scripts/export.py' % datetime.date.today().isoformat())]


@command
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--checkpoints', required=True, help='checkpoint folder (e.g. saves/LSRW) or Hub-layout folder')
    parser.add_argument('--epoch', default='latest',
                        help='which checkpoint: latest, best (the best validation score) or an epoch number')
    parser.add_argument('--format', required=True, choices=('onnx', 'safetensors'))
    parser.add_argument('--out', required=True, help='the .onnx file, or the folder for the safetensors layout')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an earlier export at --out (an ONNX file, a Hub folder; nothing else)')
    parser.add_argument('--eval', action='store_true',
                        help='ONNX of a --norm batch model: normalise with the running statistics (test.py --eval); '
                             "by default with each image's own, as test.py and load_enhancer do. A Hub folder keeps "
                             'both; its users choose (load_enhancer(..., eval=True))')
    args = parser.parse_args(argv)
    if args.eval and args.format != 'onnx':
        parser.error('--eval chooses the statistics an ONNX graph normalises with; a Hub folder keeps both (give '
                     '--format onnx, or leave out --eval)')
    if not os.path.isdir(args.checkpoints):
        raise UserError('--checkpoints %s: no such folder' % args.checkpoints)
    check_out(args.out, args.checkpoints, args.overwrite, args.format)
    graph = deployment.from_model(load_enhancer(args.checkpoints, args.epoch).model)
    parent = os.path.dirname(os.path.abspath(args.out))
    try:
        write(graph, args, parent)
    except OSError as exc:
        raise UserError('--out %s: cannot be written in %s (%s)' % (
            args.out, parent, exc.strerror or exc)) from None
    print('wrote %s' % args.out)
    return 0


def write(graph, args, parent):
    """The export, made in a temporary folder in parent and moved to --out when complete."""
    os.makedirs(parent, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent, prefix='.export-') as work:
        if args.format == 'onnx':
            temporary = os.path.join(work, 'model.onnx')
            difference = deployment.export_onnx(graph, temporary, batch_statistics=not args.eval)
            print('onnxruntime vs PyTorch on a %s batch: largest difference %.3g' % ('x'.join(
                map(str, deployment.CHECK_SIZE)), difference))
            if not difference <= TOLERANCE:
                raise UserError('the exported graph differs from PyTorch by %.3g (more than %g); please report this'
                                % (difference, TOLERANCE))
        else:
            temporary = os.path.join(work, 'model')
            deployment.save_hub_folder(graph, temporary, provenance(args))
        publish(temporary, args.out)


if __name__ == '__main__':
    sys.exit(main())
