"""Measure NeRCo's speed and peak memory: inference (Pre, H, G_A) and full training steps.

Each measurement runs in a fresh process (so peak RSS is its own) and prints one JSON line with mode, device,
dtype, height, width, batch, repeats, median_s, min_s, max_s, peak_mem_mb (peak RSS on CPU, peak allocated
GPU memory on CUDA). Weights are random and CLIP is random (--clip_pretrained none): speed does not depend on them.

    python scripts/benchmark.py --mode infer --height 400 --width 600
    python scripts/benchmark.py --mode train --height 128 --width 128 --repeats 3
    python scripts/benchmark.py --mode infer --literal-nrn        # the NRN's literal LIIF query, for comparison
    python scripts/benchmark.py --mode infer --height 3000 --width 4000 --tile 512 --repeats 1 --warmup 0
    python scripts/benchmark.py --mode infer train --device cuda --dtype bfloat16 --channels-last
    python scripts/benchmark.py --mode train --height 512 --width 512 --device cuda --activation-checkpointing
    python scripts/benchmark.py --mode infer train --compile     # first_call_s is then the compilation
    python scripts/benchmark.py --mode infer --backend onnxruntime  # the exported ONNX file (scripts/export.py)

first_call_s is the first call's time (with --compile: mostly compiling), whether or not it is a warm-up call.
"""
import argparse
import contextlib
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from models.execution import COMPILE_MODES  # noqa: E402
from util.util import UserError, command  # noqa: E402

# the flags of train.py / test.py that this script sets from its own
OUR_FLAGS = {'--crop_size': '--height', '--load_size': '--height', '--compile_mode': '--compile-mode',
             '--channels_last': '--channels-last', '--activation_checkpointing': '--activation-checkpointing'}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--mode', nargs='+', default=['infer'], choices=('infer', 'train'))
    parser.add_argument('--device', default='cpu', help='cpu, cuda or mps')
    parser.add_argument('--dtype', default='float32', choices=('float32', 'bfloat16', 'float16'),
                        help='float32, or the autocast dtype (--amp bf16 | fp16)')
    parser.add_argument('--height', type=int, default=400)
    parser.add_argument('--width', type=int, default=600)
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1, help='calls before the timed repeats')
    parser.add_argument('--ngf', type=int, default=64)
    parser.add_argument('--literal-nrn', action='store_true', help="time the NRN's literal query path")
    parser.add_argument('--channels-last', action='store_true', help='the networks in NHWC layout (--channels_last)')
    parser.add_argument('--tile', type=int, default=0, help='inference out of core in bands of about N x N pixels')
    parser.add_argument('--activation-checkpointing', action='store_true',
                        help='training: recompute the ResNet blocks in the backward pass (--activation_checkpointing)')
    parser.add_argument('--compile', action='store_true', help='the networks through torch.compile (--compile)')
    parser.add_argument('--compile-mode', default='default', choices=COMPILE_MODES,
                        help="torch.compile's mode (--compile_mode)")
    parser.add_argument('--backend', default='pytorch', choices=('pytorch', 'onnxruntime'),
                        help='inference: the networks in PyTorch, or their ONNX export run by onnxruntime (CPU)')
    parser.add_argument('--one', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--export-to', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for flag in ('height', 'width', 'batch', 'repeats', 'ngf'):
        if getattr(args, flag) < 1:
            parser.error('--%s %d: give 1 or more' % (flag, getattr(args, flag)))
    for flag in ('warmup', 'tile'):
        if getattr(args, flag) < 0:
            parser.error('--%s %d: give 0 or more' % (flag, getattr(args, flag)))
    from models.discriminators import NLayerDiscriminator
    smallest = NLayerDiscriminator.smallest_input(3)
    if 'train' in args.mode and args.height < smallest:
        parser.error('--height %d: training steps crop squares of --height pixels, and the discriminators need %d '
                     'or more' % (args.height, smallest))
    return args


def parsed(options, argv):
    """options.parse(argv); a refusal in one line naming this script's flags, without train.py's usage."""
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            opt = options.parse(argv)
        sys.stderr.write(said.getvalue())  # its warnings, if any
        return opt
    except SystemExit:
        message = said.getvalue().strip().splitlines()[-1].split('error: ', 1)[-1]
        for theirs, ours in OUR_FLAGS.items():
            message = message.replace(theirs, ours)
        raise UserError(message) from None


def build(args, mode, workdir):
    from models import create_model
    from options.test_options import TestOptions
    from options.train_options import TrainOptions
    gpu = '0' if args.device == 'cuda' else '-1'
    amp = {'float32': 'none', 'bfloat16': 'bf16', 'float16': 'fp16'}[args.dtype]
    argv = ['--dataroot', workdir, '--checkpoints_dir', workdir, '--gpu_ids', gpu, '--ngf', str(args.ngf), '--amp', amp]
    if args.channels_last:
        argv.append('--channels_last')
    if args.compile:
        argv += ['--compile', '--compile_mode', args.compile_mode]
    if mode == 'train':
        if args.activation_checkpointing:
            argv.append('--activation_checkpointing')
        argv += ['--clip_pretrained', 'none', '--display_id', '0', '--crop_size', str(args.height),
                 '--load_size', str(args.height)]
        opt = parsed(TrainOptions(), argv)
    else:
        opt = parsed(TestOptions(), argv + ['--tile', str(args.tile)])
    if args.device == 'mps':
        opt.device = 'mps'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = create_model(opt)
    model.netPre.literal = args.literal_nrn
    return model


def onnx_enhancer(args, workdir):
    """An OnnxEnhancer on the export of random networks, exported in a process of its own (so that the
    measurement's peak RSS is onnxruntime's alone)."""
    from models.inference import OnnxEnhancer
    path = os.path.join(workdir, 'nerco.onnx')
    export = [sys.executable, os.path.abspath(__file__), '--mode', 'infer', '--ngf', str(args.ngf), '--export-to', path]
    if subprocess.run(export, stdout=subprocess.DEVNULL).returncode:
        raise UserError('the ONNX export for --backend onnxruntime failed (see above)')
    return OnnxEnhancer(path)


def measure(args, mode):
    import torch
    from models.inference import Enhancer
    from util.runtime import out_of_memory
    available = {'cuda': torch.cuda.is_available(), 'mps': torch.backends.mps.is_available()}
    if not available.get(args.device, args.device == 'cpu'):
        raise UserError('--device %s: not available on this machine; use --device cpu' % args.device)
    with tempfile.TemporaryDirectory() as workdir:
        if args.backend == 'onnxruntime':
            model, device, enhancer = None, torch.device('cpu'), onnx_enhancer(args, workdir)
        else:
            model = build(args, mode, workdir)
            device = model.device
            enhancer = Enhancer(model, args.tile)
        try:
            shape = (args.batch, 3, args.height, args.width)
            real_A = torch.rand(shape, device=device) * 2 - 1
            real_B = torch.rand(shape, device=device) * 2 - 1

            def run():
                if mode == 'infer':
                    enhancer.tensor(real_A)
                else:
                    model.set_input({'A': real_A, 'B': real_B, 'A_paths': [''], 'B_paths': ['']})
                    model.optimize_parameters()
                if device.type == 'cuda':
                    torch.cuda.synchronize()

            times = []
            for call in range(args.warmup + args.repeats):
                if call == args.warmup and device.type == 'cuda':
                    torch.cuda.reset_peak_memory_stats()
                start = time.perf_counter()
                run()
                times.append(time.perf_counter() - start)
        except (MemoryError, RuntimeError) as exc:
            if out_of_memory(exc) is None:
                raise
            raise UserError('out of %s memory at --batch %d --height %d --width %d (%s); try smaller ones'
                            % (out_of_memory(exc), args.batch, args.height, args.width, mode)) from None
        first_call, times = times[0], times[args.warmup:]
        if device.type == 'cuda':
            peak = torch.cuda.max_memory_allocated() / 2 ** 20
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {'mode': mode, 'device': str(device), 'dtype': args.dtype, 'height': args.height, 'width': args.width,
            'batch': args.batch, 'repeats': args.repeats, 'first_call_s': round(first_call, 2),
            'median_s': round(statistics.median(times), 4), 'min_s': round(min(times), 4),
            'max_s': round(max(times), 4), 'peak_mem_mb': round(peak, 1),
            'literal_nrn': args.literal_nrn, 'channels_last': args.channels_last,
            'activation_checkpointing': args.activation_checkpointing, 'tile': args.tile, 'compile': args.compile,
            'backend': args.backend, 'threads': torch.get_num_threads()}


@command
def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.backend == 'onnxruntime' and (args.mode != ['infer'] or args.device != 'cpu' or args.compile
                                          or args.tile or args.dtype != 'float32'):
        raise UserError('--backend onnxruntime times float32 inference on the CPU only (--mode infer --device cpu, '
                        'no --compile, --tile or --dtype)')
    if args.export_to:
        from models import deployment
        with tempfile.TemporaryDirectory() as workdir:
            deployment.export_onnx(deployment.from_model(build(args, 'infer', workdir)), args.export_to)
        return 0
    if args.one:
        print(json.dumps(measure(args, args.mode[0])), flush=True)
        return 0
    rest = [a for a in argv if a not in args.mode and a != '--mode']
    for mode in args.mode:
        status = subprocess.run([sys.executable, os.path.abspath(__file__), '--one', '--mode', mode, *rest]).returncode
        if status:
            return status  # the measurement's process has said why
    return 0


if __name__ == '__main__':
    sys.exit(main())
