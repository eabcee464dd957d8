"""Our NeRCo reproduces the official code's numbers (tests/fixtures/official_nerco, see ../shared/parity/README.md).

The reference was computed with PyTorch's native CPU convolutions. oneDNN's kernels round differently, so these
tests run with oneDNN off; the tensors also hold with it on (test_inference_with_default_backend). The gradient
norms amplify float32 rounding, so they depend on the kernels' summation order (the CPU's vector width, cuDNN's
algorithms) by up to a few 1e-4: in float32 they are held to 5e-4, and in float64 to 1e-4. Where a CUDA GPU is
present the tests run on it too, in true float32 (TF32 off).
"""
import contextlib

import pytest
import torch

from conftest import NETWORKS, build_model, fill_model, train_options

ATOL = 1e-4
RTOL = 1e-4
# In float32 the gradient norms depend on the kernels' summation order: native CPU convolutions moved G_B's by
# 2.8e-4 on another x86 CPU, cuDNN moves the G_B and Pre norms by 1.2e-4 to 1.8e-4 (H200, any algorithm choice).
# test_gradient_norms_in_float64 holds them to RTOL.
FLOAT32_GRAD_RTOL = 5e-4
TRAIN_TENSORS = ('pre_A', 'H', 'mask', 'fake_B', 'rec_A', 'fake_A', 'pre_A1', 'rec_B')
DISCRIMINATORS = ('netD_A', 'netD_B', 'netD_A_edge', 'netD_B_edge')


@contextlib.contextmanager
def exact_float32():
    """oneDNN off on the CPU, TF32 off on CUDA."""
    flags = ((torch.backends.mkldnn, 'enabled'), (torch.backends.cudnn, 'allow_tf32'),
             (torch.backends.cuda.matmul, 'allow_tf32'))
    before = [getattr(module, name) for module, name in flags]
    for module, name in flags:
        setattr(module, name, False)
    try:
        yield
    finally:
        for (module, name), value in zip(flags, before):
            setattr(module, name, value)


@pytest.fixture(autouse=True)
def exact_float32_in_every_test():
    with exact_float32():
        yield


def grad_norm(net):
    return torch.sqrt(sum((p.grad.double() ** 2).sum() for p in net.parameters() if p.grad is not None)).item()


def assert_close(name, got, expected):
    diff = (got.detach().cpu() - expected).abs().max().item()
    assert got.shape == expected.shape, name
    assert diff <= ATOL, '%s differs by %.3g' % (name, diff)


def test_state_dict_keys_and_shapes_match_official(parity_model, manifest):
    for name in NETWORKS:
        state = getattr(parity_model, 'net' + name).state_dict()
        assert {k: list(v.shape) for k, v in state.items()} == manifest[name], name


def test_clip_has_openai_rn50_layout_and_is_frozen(parity_model):
    keys = parity_model.clip_model.state_dict().keys()
    assert 'visual.attnpool.positional_embedding' in keys and 'visual.layer4.2.conv3.weight' in keys
    assert 'transformer.resblocks.11.mlp.c_proj.weight' in keys and 'logit_scale' in keys
    assert not any(p.requires_grad for p in parity_model.clip_model.parameters())


def test_inference_path(parity_model, tensors):
    with torch.no_grad():
        outputs = parity_model.enhance(tensors['infer.real_A'].to(parity_model.device))
    for name, got in zip(('pre_A', 'H', 'mask', 'fake_B'), outputs):
        assert_close('infer.' + name, got, tensors['infer.' + name])


def test_inference_with_default_backend(parity_model, tensors):
    torch.backends.mkldnn.enabled = True
    with torch.no_grad():
        fake_B = parity_model.enhance(tensors['infer.real_A'].to(parity_model.device))[3]
    assert_close('infer.fake_B', fake_B, tensors['infer.fake_B'])


def test_batch_of_two_in_one_call(parity_model, tensors):
    with torch.no_grad():
        fake_B = parity_model.enhance(tensors['batch.real_A'].to(parity_model.device))[3]
    assert_close('batch.fake_B', fake_B, tensors['batch.fake_B'])


def test_literal_nrn_query_matches_official_and_conv_rewrite(parity_model, tensors):
    pre = parity_model.netPre
    with torch.no_grad():
        feat = pre.model(tensors['batch.real_A'].to(parity_model.device))
        literal = pre.mlp.query_literal(feat)
        rewrite = pre.mlp(feat)
        pre.literal = True
        try:
            literal_pre_A = pre(tensors['infer.real_A'].to(parity_model.device))
        finally:
            pre.literal = False
    assert (literal - rewrite).abs().max().item() < 1e-5
    with torch.no_grad():
        banded = pre.mlp(feat, chunk_pixels=3 * feat.shape[-1])
    assert (banded - rewrite).abs().max().item() < 1e-6
    assert_close('infer.pre_A (literal)', literal_pre_A, tensors['infer.pre_A'])


def parity_step(model, tensors, dtype=torch.float32):
    """forward, backward_G with frozen discriminators, then backward_D_A and backward_D_B, as the fixture did; the
    gradient norms of the six trained networks."""
    with exact_float32():
        model.set_input({'A': tensors['train.real_A'].to(dtype), 'B': tensors['train.real_B'].to(dtype),
                         'A_paths': ['a'], 'B_paths': ['b']})
        model.forward()
        model.set_requires_grad([getattr(model, n) for n in DISCRIMINATORS], False)
        model.backward_G()
        grads = {n: grad_norm(getattr(model, 'net' + n)) for n in ('G_A', 'G_B', 'Pre', 'H')}
        model.set_requires_grad([getattr(model, n) for n in DISCRIMINATORS], True)
        model.backward_D_A()
        model.backward_D_B()
        grads.update({n: grad_norm(getattr(model, 'net' + n)) for n in ('D_A', 'D_B')})
    return grads


@pytest.fixture(scope='module')
def trained_step(parity_model, tensors):
    return parity_model, parity_step(parity_model, tensors)


def test_training_forward(trained_step, tensors):
    model, _ = trained_step
    for name in TRAIN_TENSORS:
        assert_close('train.' + name, getattr(model, name), tensors['train.' + name])


def test_losses(trained_step, scalars):
    model, _ = trained_step
    losses = {k: v for k, v in scalars.items() if k.startswith('loss_')}
    assert len(losses) == 17
    for name, expected in losses.items():
        assert getattr(model, name).item() == pytest.approx(expected, rel=RTOL), name


def test_gradient_norms(trained_step, scalars):
    _, grads = trained_step
    for name, got in grads.items():
        assert got == pytest.approx(scalars['grad_norm_' + name], rel=FLOAT32_GRAD_RTOL), name


def test_gradient_norms_in_float64(tmp_path, tensors, scalars):
    """The same step in float64, where no kernel's summation order matters: the reference's norms within 1e-4."""
    torch.set_default_dtype(torch.float64)
    try:
        model = fill_model(build_model(train_options(tmp_path, '--pool_size', '0')))
        model.clip_model.double()  # open_clip builds in float32 whatever the default
        grads = parity_step(model, tensors, torch.float64)
    finally:
        torch.set_default_dtype(torch.float32)
    dtypes = {p.dtype for net in ('netG_B', 'netPre', 'clip_model') for p in getattr(model, net).parameters()}
    assert dtypes == {torch.float64}
    for name, got in grads.items():
        assert got == pytest.approx(scalars['grad_norm_' + name], rel=RTOL), name
