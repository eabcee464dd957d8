"""A trained NeRCo outside the training code: its inference path as one module from an RGB image in [0, 1] to the
enhanced image in [0, 1] (any size: the padding happens inside), exported to ONNX, and its weights as safetensors
in the Hugging Face Hub layout (config.json, model.safetensors, README.md) through huggingface_hub's mixin."""
import contextlib
import copy
import io
import json
import os
import re

import numpy as np
import torch
from huggingface_hub import PyTorchModelHubMixin

from util.util import UserError
from . import checkpoints, execution
from .in_memory import ONE_PASS
from .nerco import NETWORKS, Architecture, ImageBatchNorm, NeRCoInference

FORMAT_VERSION = 1
ONNX_INPUT, ONNX_OUTPUT = 'image', 'enhanced'
CHECK_SIZE = (2, 3, 37, 50)  # the export's own check: a batch of two, sides that need padding

MODEL_CARD = """---
library_name: nerco
license: other
tags:
- low-light-image-enhancement
- pytorch_model_hub_mixin
---
# NeRCo: low-light image enhancement

The inference networks (NRN `Pre`, mask extractor `H`, enhancer `G_A`) of NeRCo, "Implicit Neural Representation
for Cooperative Low-light Image Enhancement" (Yang et al., ICCV 2023), as exported by this project's
`scripts/export.py`. `config.json` holds the architecture; `model.safetensors` the weights (keys `Pre.*`, `H.*`,
`G_A.*`, the names of the official `latest_net_{Pre,H,G_A}.pth`).

## Provenance

{provenance}

## Licence

The authors' repository (github.com/Ysz2022/NeRCo) states no licence for its code or released weights: ask them
before redistributing weights they trained. Weights you trained yourself with this project are yours to license;
say so here.

```python
from enhancer import load_enhancer
enhance = load_enhancer('path/to/this/folder')        # or models.deployment.NeRCo.from_pretrained('user/repo')
enhanced = enhance(PIL.Image.open('dark.png'))         # a PIL image, uint8 array or tensor in [0, 1]
```

```bibtex
@InProceedings{Yang_2023_ICCV,
    author    = {Yang, Shuzhou and Ding, Moxuan and Wu, Yanmin and Li, Zihan and Zhang, Jian},
    title     = {Implicit Neural Representation for Cooperative Low-light Image Enhancement},
    booktitle = {Proceedings of the IEEE/CVF International Conference on Computer Vision (ICCV)},
    year      = {2023},
    pages     = {12918-12927}
}
```
"""


class NeRCo(NeRCoInference, PyTorchModelHubMixin):
    """The inference module (models/nerco.py) of an architecture given by its flags, as exported: forward maps RGB
    images (N, 3, H, W) in [0, 1] to their enhanced versions in [0, 1], padding and cropping inside, with the NRN
    decoded in one pass (the graph that scripts/export.py writes to ONNX). save_pretrained / from_pretrained /
    push_to_hub write and read the Hub layout; the weights are checked key by key as checkpoints are.
    It comes in training mode, which for --norm batch models means each image's own statistics, the rule of every
    backend here (the official test.py's default); .eval() for the running statistics (--eval). Neither changes the
    module, and the default instance norms give the same in both modes."""

    def __init__(self, ngf=64, netG='resnet_9blocks', norm='instance', no_dropout=True, input_nc=3, output_nc=3,
                 format_version=FORMAT_VERSION):
        if not (type(format_version) is int and format_version == FORMAT_VERSION):
            raise UserError('config.json: format_version %s is not one this code reads (%d); export the model again '
                            'with scripts/export.py, or update NeRCo' % (json.dumps(format_version), FORMAT_VERSION))
        architecture = Architecture.from_config(dict(ngf=ngf, netG=netG, norm=norm, no_dropout=no_dropout,
                                                     input_nc=input_nc, output_nc=output_nc))
        try:
            super().__init__(architecture)
        except UserError as exc:  # networks too wide for memory
            raise UserError('config.json: %s' % exc) from None
        self.for_inference_alone()

    def forward(self, image):
        fake_B = self.enhance(image * 2 - 1, ops=ONE_PASS).fake_B
        return (fake_B.clamp(-1, 1) + 1) / 2

    def _save_pretrained(self, save_directory):
        from safetensors.torch import save_file
        from safetensors import SafetensorError
        state = {'%s.%s' % (name, key): value.contiguous()
                 for name, net in self.networks().items() for key, value in net.state_dict().items()}
        path = os.path.join(save_directory, 'model.safetensors')
        try:
            save_file(state, path, metadata={'format': 'pt'})
        except SafetensorError as exc:  # its I/O errors (a full disk) come as this: as the OSError they are
            # 'IoError(Os { code: 28, ...' in some safetensors versions, 'I/O error: ... (os error 28)' in others
            code = re.search(r'(?:code: |os error )(\d+)', str(exc))
            if code is None:
                raise
            raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), path) from None

    @classmethod
    def _load_as_safetensor(cls, model, model_file, map_location, strict):
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            state = load_file(model_file)
        except (SafetensorError, OSError) as exc:
            raise UserError('%s: cannot be read as safetensors (%s); export the model again with scripts/export.py'
                            % (model_file, exc)) from None
        for name, net in model.networks().items():
            prefix = name + '.'
            own = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            checkpoints.load_state(net, own, model_file, 'ngf, netG and norm in config.json', prefix)
        unknown = [k for k in state if k.split('.', 1)[0] not in NETWORKS]
        if unknown:
            raise UserError('%s: unexpected key %s (not of %s)' % (model_file, unknown[0], ', '.join(NETWORKS)))
        return execution.on_the_cpu(model.to(map_location))


def from_model(model):
    """A NeRCo module holding the weights of a model's inference module (as load_enhancer builds it)."""
    graph = NeRCo(**model.inference.architecture.config())
    for name, net in graph.networks().items():
        net.load_state_dict(checkpoints.network_state(execution.unwrap(model.inference.networks()[name])))
    return graph


def save_hub_folder(graph, folder, provenance=()):
    """config.json, model.safetensors and a model card (README.md) in folder; provenance: (what, value) pairs of
    where the weights come from."""
    graph.save_pretrained(folder)
    lines = '\n'.join('- %s: %s' % pair for pair in provenance) or '- not recorded'
    with open(os.path.join(folder, 'README.md'), 'w') as f:
        f.write(MODEL_CARD.replace('{provenance}', lines))


def load_hub_folder(folder):
    """The NeRCo module saved in folder (by save_hub_folder or from the Hub); one line for a wrong config.json."""
    config = os.path.join(folder, 'config.json')
    try:
        with open(config) as f:
            values = json.load(f)
    except (OSError, ValueError) as exc:
        raise UserError('%s: cannot be read (%s)' % (config, exc)) from None
    if not isinstance(values, dict):
        raise UserError('%s: not a NeRCo config (a JSON object of architecture flags)' % config)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the mixin prints "Loading weights from local directory"
            return NeRCo.from_pretrained(folder, local_files_only=True)
    except UserError as exc:
        raise UserError(os.path.join(folder, str(exc)) if str(exc).startswith('config.json') else str(exc)) from None
    except TypeError as exc:
        raise UserError('%s: not a NeRCo config (%s)' % (config, exc)) from None


def export_onnx(graph, path, batch_statistics=False):
    """Write graph as an ONNX file with dynamic batch, height and width (torch.onnx's dynamo exporter), check it
    with onnx.checker and return onnxruntime's largest difference from PyTorch on a test batch. With
    batch_statistics, batch norms (--norm batch) normalise each image with its own statistics, as the official
    test.py does without --eval (and every backend here does by default); otherwise with their running statistics."""
    import onnx
    graph = copy.deepcopy(graph).eval()
    if batch_statistics:
        for norm in graph.modules():
            if isinstance(norm, ImageBatchNorm):
                norm.train()
    dims = {0: torch.export.Dim('batch'), 2: torch.export.Dim('height'), 3: torch.export.Dim('width')}
    example = torch.rand(*CHECK_SIZE, generator=torch.Generator().manual_seed(0))
    program = torch.onnx.export(graph, (example,), dynamo=True, input_names=[ONNX_INPUT],
                                output_names=[ONNX_OUTPUT], dynamic_shapes=(dims,), optimize=True, verbose=False)
    program.save(path)
    onnx.checker.check_model(path, full_check=True)
    with torch.no_grad():
        expected = graph(example).numpy()
    got = onnx_session(path).run(None, {ONNX_INPUT: example.numpy()})[0]
    return float(np.abs(got - expected).max()) if got.shape == expected.shape else float('inf')


def onnx_session(path, device='cpu'):
    """An onnxruntime session for a NeRCo ONNX file (on CUDA where asked and onnxruntime-gpu is installed); one line
    when onnxruntime is missing or the file is not a NeRCo export."""
    try:
        import onnxruntime
    except ImportError:
        raise UserError('%s: running an ONNX file needs onnxruntime: pip install onnxruntime (onnxruntime-gpu for '
                        'CUDA)' % path) from None
    providers = ['CPUExecutionProvider']
    if str(device).startswith('cuda') and 'CUDAExecutionProvider' in onnxruntime.get_available_providers():
        providers.insert(0, 'CUDAExecutionProvider')
    try:
        session = onnxruntime.InferenceSession(path, providers=providers)
    except Exception as exc:
        raise UserError('%s: not an ONNX model onnxruntime can load (%s)' % (path, str(exc).splitlines()[0])) from None
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if ([(i.name, len(i.shape)) for i in inputs] != [(ONNX_INPUT, 4)]
            or [(o.name, len(o.shape)) for o in outputs] != [(ONNX_OUTPUT, 4)]):
        raise UserError('%s: not a NeRCo export (inputs %s, outputs %s; expected one 4-d input "%s" and one 4-d '
                        'output "%s"); export one with scripts/export.py'
                        % (path, [i.name for i in inputs], [o.name for o in outputs], ONNX_INPUT, ONNX_OUTPUT))
    return session
