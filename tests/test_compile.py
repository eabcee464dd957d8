"""--compile: compiled networks give eager's outputs and gradients, every image size shares one compilation, and the
combinations that cannot work are refused in one line. Compiling takes minutes on two CPU cores, so the tests
compile the smallest networks that still have every kind of layer (--ngf 8, six ResNet blocks) on small images,
into scalar C++ kernels (half the compile time of vectorised ones; how inductor vectorises is not what they
check)."""
import os

import pytest
import torch
from PIL import Image
from torch._dynamo.utils import counters

from conftest import build_model, train_options
from helpers import TINY, image_pair, make_test_options, one_line_error, run_script, save_tiny_checkpoint
from models import execution
from models.inference import Enhancer
from models.nrn import CHUNK_PIXELS
from options.test_options import TestOptions
from options.train_options import TrainOptions
from util.util import UserError

GENERATORS = ('G_A', 'G_B', 'Pre', 'H')
DISCRIMINATORS = ('D_A', 'D_B', 'D_A_edge', 'D_B_edge')
SIX_BLOCKS = ('--netG', 'resnet_6blocks', '--netH', 'resnet_6blocks')


@pytest.fixture(autouse=True, scope='module')
def scalar_kernels():
    with torch._inductor.config.patch({'cpp.simdlen': 1}):
        yield


def compiled_graphs():
    return counters['stats']['unique_graphs']


@pytest.fixture(scope='module')
def inference_models(tmp_path_factory):
    """(eager, compiled) inference models with the same random --ngf 8 weights."""
    folder = tmp_path_factory.mktemp('compile')
    torch.manual_seed(0)
    eager = build_model(make_test_options(folder, *TINY, *SIX_BLOCKS))
    compiled = build_model(make_test_options(folder, *TINY, *SIX_BLOCKS, '--compile'))
    for name in ('G_A', 'Pre', 'H'):
        getattr(compiled, 'net' + name).load_state_dict(getattr(eager, 'net' + name).state_dict())
    return eager, compiled


def test_compiled_inference_equals_eager_at_every_size_with_one_compilation(inference_models):
    eager, compiled = inference_models
    # The second size is decoded by the NRN in several bands, one of them shorter than the others.
    sizes = [(100, 132), (CHUNK_PIXELS // 150 + 61, 150)]
    graphs = [compiled_graphs()]
    for h, w in sizes:
        x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h)) * 2 - 1
        expected, got = [Enhancer(eager).tensor(x)], [Enhancer(compiled).tensor(x)]
        graphs.append(compiled_graphs())
        for a, b in zip(expected, got):
            assert b.shape == a.shape and (a - b).abs().max() < 1e-4
    assert graphs[1] > graphs[0] and graphs[2] == graphs[1]


def test_compiled_networks_keep_plain_checkpoint_keys(inference_models):
    eager, compiled = inference_models
    assert list(compiled.netG_A.state_dict()) == list(eager.netG_A.state_dict())
    assert not any('_orig_mod' in key for key in compiled.netPre.state_dict())


def gradients(model):
    return {name: torch.cat([p.grad.flatten() for p in getattr(model, 'net' + name).parameters()])
            for name in GENERATORS + DISCRIMINATORS}


@pytest.fixture
def float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def test_compiled_training_step_gives_eager_gradients(tmp_path, float64):
    """In float64: in float32 the compiled instance norms round their statistics to float32 (PyTorch's CPU kernels
    keep them in float64), which moves these ill-conditioned gradients by up to 1e-2 of their scale, as far as eager
    float32 is from float64; a wrong gradient would hide in that."""
    args = ('--ngf', '8', '--ndf', '8', *SIX_BLOCKS, '--crop_size', '64', '--load_size', '64')
    batch = {'A': torch.rand(1, 3, 64, 64) * 2 - 1, 'B': torch.rand(1, 3, 64, 64) * 2 - 1, 'A_paths': ['a'],
             'B_paths': ['b']}
    runs = []
    for flags in ([], ['--compile']):
        torch.manual_seed(0)
        model = build_model(train_options(tmp_path, *args, *flags))
        model.clip_model.double()
        model.set_input(batch)
        torch.manual_seed(1)  # the official edge filter draws a random 1x1 convolution
        model.set_requires_grad(model.discriminators, False)
        model.forward()
        model.compute_G().backward()
        model.set_requires_grad(model.discriminators, True)
        model.compute_D().backward()
        runs.append(gradients(model))
    eager, compiled = runs
    for name in eager:
        assert eager[name].dtype == torch.float64
        assert (eager[name] - compiled[name]).abs().max() <= 1e-10 * eager[name].abs().max(), name


@pytest.mark.parametrize('options, argv, message', [
    (TestOptions, ['--compile', '--tile', '512'], '--tile computes layer by layer outside the compiled networks'),
    (TestOptions, ['--compile_mode', 'reduce-overhead'], '--compile_mode reduce-overhead: give --compile too'),
    (TestOptions, ['--compile', '--gpu_ids', '0,1'], '--compile with several --gpu_ids in one process'),
    (TrainOptions, ['--compile', '--compile_mode', 'max-autotune'], 'CUDA graphs reuse their output memory'),
])
def test_combinations_that_cannot_work_are_refused_at_parse_time(tmp_path, capsys, options, argv, message):
    with pytest.raises(SystemExit):
        options().parse(['--dataroot', str(tmp_path), '--checkpoints_dir', str(tmp_path), *argv])
    assert message in capsys.readouterr().err


def test_cuda_graphs_on_the_cpu_and_a_missing_compiler_are_one_line(tmp_path, monkeypatch):
    folder = save_tiny_checkpoint(tmp_path)
    data = tmp_path / 'data' / 'testA'
    os.makedirs(data)
    Image.fromarray(image_pair(0, (20, 24))[1]).save(data / 'a.png')
    args = ('--dataroot', str(tmp_path / 'data'), '--name', 'tiny', '--checkpoints_dir', str(tmp_path / 'saves'),
            '--results_dir', str(tmp_path / 'results'), *TINY, '--compile')
    line = one_line_error(run_script('test.py', *args, '--compile_mode', 'reduce-overhead'))
    assert line == 'error: --compile_mode reduce-overhead uses CUDA graphs, but this run is on cpu: use ' \
                   '--compile_mode default'

    from torch._inductor import cpp_builder
    from torch._inductor.exc import InvalidCxxCompiler
    monkeypatch.setattr(cpp_builder, 'get_cpp_compiler', lambda: (_ for _ in ()).throw(InvalidCxxCompiler()))
    with pytest.raises(UserError, match=r'--compile on the CPU needs a C\+\+ compiler'):
        execution.check_compile(make_test_options(tmp_path, *TINY, '--compile'), torch.device('cpu'))
    from enhancer import load_enhancer
    with pytest.raises(UserError, match='needs a C'):
        load_enhancer(folder, compile=True)
