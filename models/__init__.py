"""Model registry: `--model NeRCo` finds class NeRCoModel in models/NeRCo_model.py (CycleGAN's convention)."""
import importlib

from .base_model import BaseModel


def find_model_using_name(model_name):
    """The BaseModel subclass in models/<model_name>_model.py named <model_name>Model, case-insensitively."""
    try:
        module = importlib.import_module('models.%s_model' % model_name)
    except ModuleNotFoundError:
        raise ValueError('--model %s: no file models/%s_model.py' % (model_name, model_name)) from None
    target = model_name.replace('_', '').lower() + 'model'
    for name, cls in vars(module).items():
        if name.lower() == target and isinstance(cls, type) and issubclass(cls, BaseModel):
            return cls
    raise ValueError('models/%s_model.py defines no BaseModel subclass named %s' % (model_name, target))


def get_option_setter(model_name):
    return find_model_using_name(model_name).modify_commandline_options


def create_model(opt):
    """Build the model named by --model from the parsed options (on the device util.runtime.setup chooses, if the
    entry point has not called it yet)."""
    return find_model_using_name(opt.model)(opt)
