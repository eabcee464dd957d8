"""Checkpoints in the official format, clear loading errors, inference at any size, and CPU training steps."""
import os

import pytest
import torch

from conftest import NETWORKS, build_model, fill_model, train_options
from helpers import make_test_options, write_official_checkpoints
from fill import fill_state_dict
from models.inference import Enhancer
from training.state import RunState, training_state
from util.util import UserError


def load_test_model(tmp_path, *extra):
    model = build_model(make_test_options(tmp_path, *extra))
    model.setup(model.opt)
    return model


def test_official_checkpoints_load_and_reproduce_inference(tmp_path, manifest, tensors):
    write_official_checkpoints(tmp_path / 'saves' / 'LSRW', manifest)
    model = load_test_model(tmp_path)
    assert not hasattr(model, 'clip_model') and not hasattr(model, 'netG_B')
    with torch.no_grad():
        fake_B = model.enhance(tensors['infer.real_A'])[3]
    assert (fake_B - tensors['infer.fake_B']).abs().max().item() < 1e-4


def test_module_prefix_and_legacy_instance_norm_keys_are_accepted(tmp_path, manifest, tensors):
    legacy = {'G_A': {'module.model.2.running_mean': torch.zeros(64), 'module.model.2.running_var': torch.ones(64),
                      'module.model.2.num_batches_tracked': torch.tensor(0)}}
    write_official_checkpoints(tmp_path / 'saves' / 'LSRW', manifest, prefix='module.', extra=legacy)
    model = load_test_model(tmp_path)
    with torch.no_grad():
        fake_B = model.enhance(tensors['infer.real_A'])[3]
    assert (fake_B - tensors['infer.fake_B']).abs().max().item() < 1e-4


def test_saved_checkpoints_have_official_names_and_keys(tmp_path, manifest):
    model = build_model(train_options(tmp_path, '--name', 'run'))
    model.save_networks('latest')
    for name in NETWORKS:
        state = torch.load(tmp_path / 'saves' / 'run' / ('latest_net_%s.pth' % name), weights_only=True)
        assert {k: list(v.shape) for k, v in state.items()} == manifest[name]
    assert not [f for f in os.listdir(tmp_path / 'saves' / 'run') if f.endswith('.tmp')]


def test_wrong_shape_names_file_key_and_option(tmp_path, manifest):
    write_official_checkpoints(tmp_path / 'saves' / 'LSRW', manifest)
    with pytest.raises(UserError) as err:
        load_test_model(tmp_path, '--ngf', '32')
    message = str(err.value)
    assert 'latest_net_G_A.pth' in message and 'model.1.' in message and '--ngf' in message
    assert '\n' not in message


def test_missing_and_truncated_checkpoints(tmp_path, manifest):
    write_official_checkpoints(tmp_path / 'saves' / 'LSRW', manifest)
    with pytest.raises(UserError, match=r'10_net_G_A\.pth: checkpoint not found.*checkpoints here: latest'):
        load_test_model(tmp_path, '--epoch', '10')
    path = tmp_path / 'saves' / 'LSRW' / 'latest_net_H.pth'
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(UserError, match=r'latest_net_H\.pth: cannot be read'):
        load_test_model(tmp_path)


# (size, padding to the bottom and right, mode): sides become multiples of 4 and at least 8.
PADDING = [((1, 1), (7, 7), 'replicate'), ((3, 5), (5, 3), 'replicate'), ((37, 41), (3, 3), 'reflect'),
           ((40, 56), (0, 0), 'reflect')]


@pytest.mark.parametrize('size, padding, mode', PADDING)
def test_any_input_size_keeps_its_size(tmp_path, size, padding, mode):
    model = build_model(make_test_options(tmp_path, '--ngf', '8'))
    image = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        outputs = model.enhance(image)
        padded = torch.nn.functional.pad(image, (0, padding[1], 0, padding[0]), mode=mode)
        pre_A = model.netPre(padded)
        H, mask = model.netH(padded)
        fake_B = model.netG_A(torch.cat((padded, pre_A), 1) * mask)
    h, w = size
    for out, by_hand in zip(outputs, (pre_A, H, mask, fake_B)):
        assert out.shape[-2:] == size and torch.isfinite(out).all()
        assert torch.allclose(out, by_hand[..., :h, :w], atol=1e-6)


def test_loss_weights_follow_lambda_A_lambda_B_and_lambda_identity(tmp_path):
    """The weighted losses of the official backward_G recomputed by hand, with lambda_A != lambda_B (the parity
    case has both at 10, so it cannot tell them apart)."""
    torch.manual_seed(0)
    model = build_model(train_options(tmp_path, '--ngf', '8', '--ndf', '8', '--pool_size', '0', '--lambda_A', '3',
                                      '--lambda_B', '7', '--lambda_identity', '0.25'))
    real_A, real_B = (torch.rand(1, 3, 32, 32) * 2 - 1 for _ in range(2))
    model.set_input({'A': real_A, 'B': real_B, 'A_paths': ['a'], 'B_paths': ['b']})
    l1, gan = torch.nn.functional.l1_loss, model.criterionGAN
    with torch.no_grad():
        model.forward()
        model.compute_G()
        expected = {
            'idt_A': l1(model.netG_A(torch.cat((real_B, real_B), 1)), real_B) * 7 * 0.25,
            'idt_B': l1(model.netG_B(real_A), real_A) * 3 * 0.25,
            'cycle_A': l1(model.rec_A, real_A) * 3,
            'cycle_B': l1(model.rec_B, real_B) * 7,
            'PreConsis': l1(model.pre_A, real_A) * 4 * 3 + gan(model.netD_B(model.pre_A), True),
        }
    for name, value in expected.items():
        assert getattr(model, 'loss_' + name).item() == pytest.approx(value.item(), rel=1e-6), name

    def loss(name):
        return getattr(model, 'loss_' + name)

    loss_A = loss('G_A') + loss('cycle_A') + loss('idt_A') + loss('D_A_CLIP') * 0.5 + loss('G_A_edge') * 0.5
    loss_B = loss('G_B') + loss('cycle_B') + loss('idt_B') + loss('D_B_CLIP') * 0.5 + loss('G_B_edge') * 0.5
    total = loss_A + loss_B + loss('H') * 0.5 + loss('PreConsis')
    assert model.loss_G.item() == pytest.approx(total.item(), rel=1e-6)


def test_tiled_inference_equals_in_memory_with_parity_weights(tmp_path):
    model = build_model(make_test_options(tmp_path))
    for name in ('G_A', 'Pre', 'H'):
        net = getattr(model, 'net' + name)
        net.load_state_dict(fill_state_dict(net.state_dict(), name + '.'))
    images = torch.rand(2, 3, 37, 50, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        reference = model.enhance(images)
        tiled = model.enhance(images, tile=10)  # bands of about 100 pixels: one to three rows of each layer
    for name, a, b in zip(('pre_A', 'H', 'mask', 'fake_B'), reference, tiled):
        assert a.shape == b.shape and (a - b).abs().max() < 1e-4, name


@pytest.mark.parametrize('size', [(1, 7), (3, 5), (5, 1), (9, 12), (10, 13), (11, 14), (12, 15)])
def test_tiled_inference_is_exact_at_small_sizes_in_float64(tmp_path, size):
    """Sides under 8 are padded with repeated pixels, and the instance norms then see nearly constant maps, which
    makes float32 results of any two implementations differ (docs/FIDELITY.md); in float64 the band engine equals
    in-memory inference at such sizes and at every remainder of 4. (At 1x1 the padded image is exactly constant and
    even float64 rounding decides the output: only its shape is checked, by test_any_input_size_keeps_its_size.)"""
    torch.manual_seed(0)
    model = build_model(make_test_options(tmp_path, '--ngf', '8'))
    for net in (model.netPre, model.netH, model.netG_A):
        net.double()
    image = torch.rand(1, 3, *size, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        reference = model.enhance(image)
        tiled = model.enhance(image, tile=3)
    for name, a, b in zip(('pre_A', 'H', 'mask', 'fake_B'), reference, tiled):
        assert b.dtype == torch.float64 and a.shape == b.shape == (1, a.shape[1], *size)
        assert (a - b).abs().max() < 1e-9, name


@pytest.mark.parametrize('norm,eval_mode', [('batch', True), ('batch', False), ('none', False)])
def test_tiled_inference_with_other_norms(tmp_path, norm, eval_mode):
    torch.manual_seed(0)
    model = build_model(make_test_options(tmp_path, '--ngf', '8', '--norm', norm, *(['--eval'] if eval_mode else [])))
    for net in (model.netPre, model.netH, model.netG_A):
        for layer in net.modules():
            if isinstance(layer, torch.nn.BatchNorm2d):
                layer.running_mean.uniform_(-0.5, 0.5)
                layer.running_var.uniform_(0.5, 2)
        net.train(not eval_mode)
    image = torch.rand(1, 3, 24, 32) * 2 - 1
    with torch.no_grad():
        reference = model.enhance(image)[3]
        tiled = model.enhance(image, tile=8)[3]
    assert (reference - tiled).abs().max() < 1e-4


def test_tiled_inference_rejects_unet_generators(tmp_path):
    """Before any image (test.py, enhance.py, enhance_video.py make their Enhancer at the start), and in the
    out-of-core runner itself."""
    model = build_model(make_test_options(tmp_path, '--ngf', '8', '--netG', 'unet_256', '--tile', '64'))
    with pytest.raises(UserError, match='--tile supports the ResNet generators only.*not --netG unet_256'):
        Enhancer(model, model.opt.tile)
    with pytest.raises(UserError, match='--tile supports the ResNet generators only'), torch.no_grad():
        model.enhance(torch.rand(1, 3, 16, 16), tile=64)


def test_tiled_inference_on_a_full_disk_names_tmpdir(tmp_path, monkeypatch):
    from models import out_of_core

    def full_disk(self, top, band):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(out_of_core.Activation, 'write', full_disk)
    model = build_model(make_test_options(tmp_path, '--ngf', '8', '--tile', '64'))
    with pytest.raises(UserError, match='No space left on device; set TMPDIR to a folder'):
        Enhancer(model, model.opt.tile).tensor(torch.rand(1, 3, 16, 16))


@pytest.mark.parametrize('amp', ['none', 'bf16', 'fp16'])
def test_training_steps_on_cpu(tmp_path, amp):
    torch.manual_seed(0)
    model = build_model(train_options(tmp_path, '--ngf', '16', '--ndf', '16', '--crop_size', '32',
                                      '--load_size', '32', '--pool_size', '2', '--amp', amp))
    assert model.scaler.is_enabled() == (amp == 'fp16')
    if amp == 'fp16':
        # The default initial scale, 2**16, overflows float16 for the first dozen steps of a fresh model (the
        # scaler skips them and backs off to about 8); start there so that three steps update the weights.
        model.scaler = torch.amp.GradScaler('cpu', init_scale=8.0)
    watched = {name: [p.detach().clone() for p in getattr(model, 'net' + name).parameters()]
               for name in ('G_A', 'G_B', 'Pre', 'H', 'D_A', 'D_B_edge')}
    clip_before = [p.detach().clone() for p in model.clip_model.parameters()]
    for _ in range(3):
        model.set_input({'A': torch.rand(1, 3, 32, 32) * 2 - 1, 'B': torch.rand(1, 3, 32, 32) * 2 - 1,
                         'A_paths': ['a'], 'B_paths': ['b']})
        total = model.optimize_parameters()
        assert torch.isfinite(total)
        for name, value in model.get_current_losses().items():
            assert value == value and abs(value) != float('inf'), name
    for name, before in watched.items():
        after = list(getattr(model, 'net' + name).parameters())
        assert any(not torch.equal(a, b) for a, b in zip(after, before)), name
    assert all(torch.equal(a, b) for a, b in zip(model.clip_model.parameters(), clip_before))
    assert all(p.grad is None for p in model.clip_model.parameters())
    assert model.fake_B.dtype == {'none': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}[amp]
    assert all(p.dtype == torch.float32 for name in watched for p in getattr(model, 'net' + name).parameters())
    if amp == 'fp16':
        assert 0 < training_state(model, RunState())['scaler']['scale'] <= 8


def test_amp_inference_stays_close_to_float32(tmp_path):
    torch.manual_seed(0)
    model = build_model(make_test_options(tmp_path, '--ngf', '16'))
    image = torch.rand(1, 3, 40, 56) * 2 - 1
    with torch.no_grad():
        reference = model.enhance(image)[3]
        model.opt.amp = 'bf16'
        with model.autocast():
            mixed = model.enhance(image)[3]
    assert mixed.dtype == torch.bfloat16
    difference = (mixed.float() - reference).abs()
    assert 0 < difference.max() < 0.1 and difference.mean() < 0.02


def test_channels_last_gives_the_same_values_and_plain_checkpoints(tmp_path):
    args = ('--ngf', '16', '--ndf', '16', '--pool_size', '0', '--crop_size', '32', '--load_size', '32')
    batch = {'A': torch.rand(1, 3, 32, 32) * 2 - 1, 'B': torch.rand(1, 3, 32, 32) * 2 - 1,
             'A_paths': ['a'], 'B_paths': ['b']}
    runs = []
    for flags in ([], ['--channels_last']):
        model = fill_model(build_model(train_options(tmp_path / str(len(flags)), *args, *flags)))
        model.set_input(batch)
        torch.manual_seed(0)  # the official edge filter draws a random 1x1 convolution
        model.forward()
        model.compute_G()
        model.compute_D()
        runs.append(model)
    plain, nhwc = runs
    weight = nhwc.netG_A.model[1].weight
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    assert nhwc.fake_B.is_contiguous(memory_format=torch.channels_last)
    for name in ('pre_A', 'mask', 'fake_B', 'rec_A', 'fake_A', 'rec_B'):
        assert torch.allclose(getattr(plain, name), getattr(nhwc, name), atol=1e-4), name
    for (name, a), b in zip(plain.get_current_losses().items(), nhwc.get_current_losses().values()):
        assert abs(a - b) <= 1e-4 * max(1, abs(a)), name
    nhwc.save_networks('latest')
    saved = torch.load(os.path.join(nhwc.save_dir, 'latest_net_G_A.pth'), weights_only=True)
    assert all(t.is_contiguous() for t in saved.values())


def test_activation_checkpointing_stores_less_and_gives_the_same_gradients(tmp_path):
    # with image pools CLIP sees detached images (as the official code runs), so its activations are not stored
    args = ('--ngf', '16', '--ndf', '16', '--pool_size', '2', '--crop_size', '32', '--load_size', '32')
    batch = {'A': torch.rand(1, 3, 32, 32) * 2 - 1, 'B': torch.rand(1, 3, 32, 32) * 2 - 1,
             'A_paths': ['a'], 'B_paths': ['b']}
    generators = ('netG_A', 'netG_B', 'netPre', 'netH')
    runs = []
    for flags in ([], ['--activation_checkpointing']):
        model = fill_model(build_model(train_options(tmp_path / str(len(flags)), *args, *flags)))
        model.set_input(batch)
        model.set_requires_grad([model.netD_A, model.netD_B, model.netD_A_edge, model.netD_B_edge], False)
        weights = {p.data_ptr() for name in model.model_names for p in getattr(model, 'net' + name).parameters()}
        stored = {}

        def store(t):
            if t.data_ptr() not in weights:
                stored[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(store, lambda t: t):
            torch.manual_seed(0)  # the official edge filter draws a random 1x1 convolution
            model.forward()
            model.backward_G()
        grads = [p.grad for name in generators for p in getattr(model, name).parameters()]
        runs.append((sum(stored.values()), grads))
    (plain_stored, plain_grads), (recomputed_stored, recomputed_grads) = runs
    assert recomputed_stored < 0.65 * plain_stored
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(plain_grads, recomputed_grads))


def test_paper_clip_flag_lets_clip_loss_reach_generators(tmp_path):
    """With --pool_size > 0 the official routing detaches CLIP's inputs; --paper_clip keeps the gradient."""
    grads = {}
    for flag in ([], ['--paper_clip']):
        torch.manual_seed(0)
        model = build_model(train_options(tmp_path, '--ngf', '8', '--ndf', '8', '--crop_size', '24', *flag))
        model.set_input({'A': torch.rand(1, 3, 16, 16) * 2 - 1, 'B': torch.rand(1, 3, 16, 16) * 2 - 1,
                         'A_paths': ['a'], 'B_paths': ['b']})
        model.forward()
        loss = model.text_discriminator(model.clip_input(model.fake_B_clip_pool, model.fake_B), 1)
        grads[bool(flag)] = loss.requires_grad
    assert grads == {False: False, True: True}


def test_clip_weights_from_a_file_and_a_clear_error_when_unavailable(tmp_path, monkeypatch):
    import open_clip
    from models import text_discriminator
    random_clip = text_discriminator.load_clip('none')
    state = {'module.' + k: v for k, v in fill_state_dict_of(random_clip).items()}
    torch.save({'state_dict': state}, tmp_path / 'RN50.pt')
    loaded = text_discriminator.load_clip(str(tmp_path / 'RN50.pt'))
    assert torch.equal(loaded.state_dict()['visual.conv1.weight'], state['module.visual.conv1.weight'])
    assert not any(p.requires_grad for p in loaded.parameters())

    def offline(*args, **kwargs):
        raise OSError('network unreachable')

    monkeypatch.setattr(text_discriminator, 'OPENAI_CACHE', str(tmp_path / 'cache' / 'RN50.pt'))
    monkeypatch.setattr(open_clip.pretrained, 'download_pretrained', offline)
    with pytest.raises(UserError) as err:
        text_discriminator.load_clip('openai')
    message = str(err.value)
    assert 'RN50.pt' in message and str(tmp_path / 'cache' / 'RN50.pt') in message and '--clip_pretrained' in message
    with pytest.raises(UserError, match='no such file'):
        text_discriminator.load_clip(str(tmp_path / 'missing.pt'))


def fill_state_dict_of(net):
    from fill import fill_state_dict
    return fill_state_dict(net.state_dict(), 'clip.')
