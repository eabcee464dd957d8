"""Mutation testing with mutmut: small bugs are made in the given modules one at a time, and the tests that cover
each module are run against each; a mutant that no test notices (a survivor) points at a missing assertion.

    python scripts/mutation.py models/temporal.py util/locks.py      (or: make mutation MODULES="...")
    python scripts/mutation.py util/locks.py --tests "tests/test_bad_inputs.py -k lock"

Each module is run with the tests listed for it in TESTS below (or --tests), a few minutes a module on two cores.
mutmut reads its settings from setup.cfg, so this script writes one for the run (refusing to replace a setup.cfg it
did not write) and removes it afterwards; mutmut's own copy of the code stays in mutants/ (`mutmut browse` there
shows each survivor). The survivors judged harmless are listed, with why, in docs/RELIABILITY.md.
"""
import argparse
import os
import shlex
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from util.util import UserError, command  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the code mutmut copies (it mutates only the modules asked for)
SOURCES = ['app.py', 'enhancer.py', 'train.py', 'data', 'metrics', 'models', 'options', 'scripts', 'training', 'util']
# the tests that cover each module, fast enough to run once per mutant (one -k expression: pytest keeps the last)
TESTS = {
    'models/temporal.py': 'tests/test_video.py -k "smoothing or normalising or camera or contrast"',
    'metrics/flicker.py': 'tests/test_video.py -k "evaluate_reports or normalising or static_pixels"',
    'util/locks.py': 'tests/test_bad_inputs.py tests/test_safety.py -k "lock or held"',
    'models/inference.py': 'tests/test_inference.py tests/test_video.py '
                           '-k "every_mode or the_same_output or smoothing or come_back"',
    'training/validation.py': 'tests/test_validation.py '
                              '-k "nan_metric or best_checkpoint_is or without_images or unreadable"',
    'models/checkpoints.py': 'tests/test_safety.py '
                             '-k "kill_while_saving or mixed_checkpoint or full_disk or network_file"',
    'scripts/export.py': 'tests/test_export.py -k "out_never or folders_that_hold or model_card"',
    'app.py': 'tests/test_app.py -k "tiles_exactly or too_large or out_of_gpu"',
    'util/util.py': 'tests/test_safety.py -k "atomic or reaches_the_disk"',
}
MARK = '# written by scripts/mutation.py for one run; removed when it ends\n'


def settings(module, tests):
    selection = '\n'.join('    ' + arg for arg in shlex.split(tests))
    return (MARK + '[mutmut]\nsource_paths =\n%s\nonly_mutate =\n    %s\npytest_add_cli_args_test_selection =\n%s\n'
            'pytest_add_cli_args =\n    -p\n    no:cacheprovider\n    -q\nprocess_isolation = forkserver\n'
            % ('\n'.join('    ' + s for s in SOURCES), module, selection))


def run(module, tests):
    """mutmut on module with tests; returns mutmut's exit status."""
    path = os.path.join(ROOT, 'setup.cfg')
    if os.path.exists(path) and not open(path).read().startswith(MARK):
        raise UserError('%s exists and was not written by this script; move it away to run mutmut' % path)
    shutil.rmtree(os.path.join(ROOT, 'mutants'), ignore_errors=True)  # mutmut would keep outcomes of older tests
    with open(path, 'w') as f:
        f.write(settings(module, tests))
    env = dict(os.environ, OMP_NUM_THREADS='1')
    try:
        status = subprocess.call([sys.executable, '-m', 'mutmut', 'run'], cwd=ROOT, env=env,
                                 stdout=subprocess.DEVNULL)
        results = subprocess.run([sys.executable, '-m', 'mutmut', 'results', '--all', 'true'], cwd=ROOT, env=env,
                                 capture_output=True, text=True).stdout
        prefix = os.path.splitext(module)[0].replace('/', '.') + '.'
        outcomes = dict(line.strip().rsplit(': ', 1) for line in results.splitlines()
                        if line.strip().startswith(prefix))
        survivors = [name for name, outcome in outcomes.items() if outcome != 'killed']
        for name in survivors:
            show = subprocess.run([sys.executable, '-m', 'mutmut', 'show', name], cwd=ROOT, env=env,
                                  capture_output=True, text=True).stdout
            changed = [line for line in show.splitlines() if line[:1] in '+-' and line[:3] not in ('---', '+++')]
            print('%s: %s\n%s' % (name, outcomes[name], '\n'.join(changed)))
        if outcomes and all(outcome == 'not checked' for outcome in outcomes.values()):
            print('%s: no test reached it in the tests\' own process (a script the tests load by path or run as a '
                  'command is out of mutmut\'s sight)' % module)
        killed = len(outcomes) - len(survivors)
        print('%s: %d of %d mutants killed (%.0f%%)' % (module, killed, len(outcomes),
                                                         100 * killed / max(len(outcomes), 1)), flush=True)
        return status
    finally:
        os.remove(path)


@command
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('modules', nargs='+', help='product modules to mutate, e.g. models/temporal.py')
    parser.add_argument('--tests', help='pytest arguments selecting the tests to run against each mutant '
                                        '(default: the ones listed for the module in TESTS)')
    args = parser.parse_args(argv)
    for module in args.modules:
        if not os.path.isfile(os.path.join(ROOT, module)):
            raise UserError('%s: no such module (give a path relative to the repository, e.g. util/locks.py)' % module)
        tests = args.tests or TESTS.get(module)
        if tests is None:
            raise UserError('%s: no tests are listed for it in scripts/mutation.py; give --tests "tests/test_x.py"'
                            % module)
        print('== %s (tests: %s)' % (module, tests), flush=True)
        if run(module, tests) != 0:
            return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
