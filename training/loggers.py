"""A run's curves where researchers follow them, beside loss_log.txt and the HTML page: TensorBoard event files
(--tensorboard, in <run>/tensorboard/) and Weights & Biases (--wandb PROJECT). The x axis is the number of training
images seen by all processes. A logger that cannot start is refused in one line before the first step; one that
fails during the run prints one warning and is dropped, and training goes on."""
import netrc
import secrets
import os
import shutil
import sys

from util.util import UserError, made_again, writable_folder

RUN_ID_FILE = 'wandb_run_id.txt'


def plain_options(opt):
    """The options as values TensorBoard's hparams and W&B's config accept."""
    return {k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in sorted(vars(opt).items())}


class TensorBoard:
    """Event files in folder; resuming at step purges what an interrupted run wrote from that step on, so that no
    step is written twice and no curve turns back."""

    def __init__(self, folder, resume_step):
        from torch.utils.tensorboard import SummaryWriter
        self.folder = folder
        self.writer = SummaryWriter(folder, purge_step=resume_step, flush_secs=30)

    def present(self):
        """Make the folder again if it was deleted during the run (its writer thread would die on the next event,
        and nothing more would be logged)."""
        made_again(self.folder, "TensorBoard's folder")

    def scalars(self, values, step):
        self.present()
        for name, value in values.items():
            self.writer.add_scalar(name, value, step)

    def images(self, images, step):
        self.present()
        for name, image in images.items():
            self.writer.add_image('visuals/' + name, image, step, dataformats='HWC')

    def start(self, opt):
        rows = '\n'.join('| %s | %s |' % (k, v) for k, v in plain_options(opt).items())
        self.writer.add_text('options', '| option | value |\n|---|---|\n' + rows)

    def finish(self, opt, best, step):
        self.present()
        if best:
            self.writer.add_hparams(plain_options(opt), {'best/' + best['metric']: best['value']}, run_name='.',
                                    global_step=step)
        self.writer.close()

    def close(self):
        self.writer.close()


def wandb_logged_in():
    if os.environ.get('WANDB_API_KEY'):
        return True
    try:
        return netrc.netrc().authenticators('api.wandb.ai') is not None
    except (OSError, netrc.NetrcParseError):
        return False


class WeightsAndBiases:
    """A W&B run in the run's folder; --continue_train resumes the same W&B run (its id is kept in the folder)."""

    def __init__(self, project, opt, folder, resuming):
        try:
            import wandb
        except ImportError:
            raise UserError('--wandb %s: Weights & Biases is not installed; pip install wandb' % project) from None
        mode = os.environ.get('WANDB_MODE', 'online')
        if mode not in ('offline', 'disabled', 'dryrun') and not wandb_logged_in():
            raise UserError('--wandb %s: not logged in to Weights & Biases; run `wandb login` or set WANDB_API_KEY, '
                            'or set WANDB_MODE=offline to keep the run on disk' % project)
        id_path = os.path.join(folder, RUN_ID_FILE)
        if resuming and os.path.isfile(id_path):
            with open(id_path) as f:
                run_id = f.read().strip()
        else:
            run_id = secrets.token_hex(6)
            with open(id_path, 'w') as f:
                f.write(run_id)
        self.wandb = wandb
        self.run = wandb.init(project=project, name=opt.name, dir=folder, id=run_id, resume='allow',
                              config=plain_options(opt), settings=wandb.Settings(console='off', silent=True))

    def scalars(self, values, step):
        self.run.log(values, step=step)

    def images(self, images, step):
        self.run.log({'visuals/' + name: self.wandb.Image(image) for name, image in images.items()}, step=step)

    def start(self, opt):
        pass  # the options went in as the run's config

    def finish(self, opt, best, step):
        if best:
            self.run.summary['best/' + best['metric']] = best['value']
        self.run.finish()

    def close(self):
        self.run.finish()


class Loggers:
    """The loggers the options ask for, for rank 0 of a run whose first step is after resume_step images."""

    def __init__(self, opt, run_folder, resume_step):
        self.active = {}
        if opt.tensorboard:
            folder = os.path.join(run_folder, 'tensorboard')
            if not opt.continue_train and os.path.isdir(folder):
                shutil.rmtree(folder)  # a fresh run (--overwrite) starts a fresh curve
            writable_folder(folder, '--tensorboard (%s)' % folder)
            self.active['TensorBoard'] = TensorBoard(folder, resume_step + 1 if resume_step else None)
        if opt.wandb:
            self.active['Weights & Biases'] = WeightsAndBiases(opt.wandb, opt, run_folder, opt.continue_train)
        self.call('start', opt)

    def call(self, method, *args):
        for name, logger in list(self.active.items()):
            try:
                getattr(logger, method)(*args)
            except Exception as exc:
                print('warning: %s logging failed (%s: %s); training goes on without it'
                      % (name, type(exc).__name__, exc), file=sys.stderr)
                del self.active[name]

    def scalars(self, values, step):
        self.call('scalars', values, step)

    def images(self, images, step):
        self.call('images', images, step)

    def finish(self, opt, best, step):
        """The best validation result (reached at step) as hparams / summary; the loggers are closed."""
        self.call('finish', opt, best, step)
        self.active = {}

    def close(self):
        self.call('close')
