"""Model registry: `--model NeRCo` finds class NeRCoModel in models/NeRCo_model.py (CycleGAN's convention)."""
from util.util import find_class
from .base_model import BaseModel


def find_model_using_name(model_name):
    return find_class('models', model_name, 'model', BaseModel, '--model')


def get_option_setter(model_name):
    return find_model_using_name(model_name).modify_commandline_options


def create_model(opt):
    """Build the model named by --model from the parsed options (on the device util.runtime.setup chooses, if the
    entry point has not called it yet)."""
    return find_model_using_name(opt.model)(opt)
