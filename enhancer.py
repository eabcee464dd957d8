"""One-call enhancement from Python: load_enhancer(checkpoint folder, Hub-layout folder or ONNX file) returns an
enhancer, a function from a low-light image to its enhanced version (the inference path Pre -> H -> G_A, as test.py
runs it)."""
import os

from models import checkpoints, execution, inference
from models.nerco import Architecture, NeRCoInference
from options.recorded import record_path, recorded_options
from util.runtime import named_device
from util.util import UserError


def load_enhancer(path, epoch='latest', device='cpu', hint=inference.HINT, architecture=None, **settings):
    """An enhancer (models/inference.py) for path: a checkpoint folder (e.g. "saves/LSRW"; epoch picks the
    checkpoint, the architecture is the one recorded there unless architecture ({flag: value}) says otherwise; a file
    of the set, e.g. 200_net_G_A.pth, stands for its folder at its epoch), a Hub-layout folder (config.json,
    model.safetensors: scripts/export.py) or an ONNX file (run by onnxruntime). settings are test.py's execution
    flags by name (models.execution.Settings: tile=512, amp='bf16', compile=True, channels_last, eval; not for
    ONNX); hint is what the out-of-GPU-memory line suggests."""
    path, device = os.path.abspath(path), named_device(str(device))
    settings = execution.Settings(**settings)
    if not os.path.exists(path):
        raise UserError('%s: no such file or folder (a checkpoint folder, a Hub folder or an .onnx file)' % path)
    checkpoint = checkpoints.NETWORK_FILE.fullmatch(os.path.basename(path))
    single = 'an ONNX file' if os.path.isfile(path) else 'a Hub folder' if os.path.isfile(
        os.path.join(path, 'config.json')) else None
    if single and not checkpoint and str(epoch) != 'latest':
        raise UserError('--epoch %s: %s is %s, which holds one model, not one per epoch; leave out --epoch'
                        % (epoch, path, single))
    if checkpoint and os.path.isfile(path):  # one file of a checkpoint set: its folder, at its epoch
        if str(epoch) not in ('latest', checkpoint.group(1)):
            raise UserError('--epoch %s: %s is of the checkpoint %s; give its folder with --epoch %s, or leave out '
                            '--epoch' % (epoch, path, checkpoint.group(1), epoch))
        path, epoch = os.path.dirname(path), checkpoint.group(1)
    elif os.path.isfile(path):
        given = [name for name, value in vars(settings).items() if value != getattr(execution.Settings, name)]
        if given or architecture:
            raise UserError('%s: test.py flags (%s) do not apply to an ONNX file'
                            % (path, ', '.join('--' + name for name in given + list(architecture or ()))))
        return inference.OnnxEnhancer(path, device)
    if os.path.isfile(os.path.join(path, 'config.json')):
        if architecture:
            raise UserError('%s: a Hub folder\'s config.json sets its architecture; leave out %s'
                            % (path, ', '.join('--' + name for name in architecture)))
        from models.deployment import load_hub_folder
        network = load_hub_folder(path)
    else:
        source = record_path(path) or os.path.join(path, 'train_opt.txt')
        network = NeRCoInference(Architecture.from_record({**recorded_options(path), **(architecture or {})},
                                                          source)).for_inference_alone()
        checkpoints.load_networks(path, str(epoch), network.networks(), '--checkpoints and --epoch')
    return inference.Enhancer(inference.InferenceModel(network, device, settings), settings.tile, hint)
