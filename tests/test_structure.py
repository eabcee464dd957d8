"""The code's layers import downward only: util <- data, models, metrics <- options, training <- entry points
(train.py, test.py, enhancer.py, scripts/), each module checked alone in a fresh interpreter, so no import cycle
can hide."""
import json
import re
import os
import subprocess
import sys

from conftest import ROOT

ENTRY_POINTS = {'train', 'test', 'enhancer', 'scripts'}
MAY_IMPORT = {'util': set(), 'data': {'util'}, 'models': {'util'}, 'metrics': {'util'},
              'options': {'util', 'data', 'models'}, 'training': {'util', 'models', 'metrics'}}
PROBE = """import importlib, json, sys
sys.path.insert(0, {root!r})
importlib.import_module({module!r})
print(json.dumps(sorted({{name.split('.')[0] for name in sys.modules}})))
"""


def layer_modules():
    for package in MAY_IMPORT:
        yield package
        for name in sorted(os.listdir(os.path.join(ROOT, package))):
            if name.endswith('.py') and name != '__init__.py':
                yield '%s.%s' % (package, name[:-3])


def test_each_module_imports_only_the_layers_below_its_own():
    modules = list(layer_modules())
    assert 'models.checkpoints' in modules and 'util.runtime' in modules
    project = set(MAY_IMPORT) | ENTRY_POINTS
    env = dict(os.environ, OMP_NUM_THREADS='1')
    for start in range(0, len(modules), 4):  # four interpreters at a time (each holds torch)
        running = [(module, subprocess.Popen([sys.executable, '-c', PROBE.format(root=ROOT, module=module)],
                                             cwd='/', stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                             env=env))
                   for module in modules[start:start + 4]]
        for module, process in running:
            out, err = process.communicate(timeout=300)
            assert process.returncode == 0, (module, err[-2000:])
            layer = module.split('.')[0]
            imported = set(json.loads(out)) & project - {layer}
            assert imported <= MAY_IMPORT[layer], (module, sorted(imported - MAY_IMPORT[layer]))


def test_every_test_the_docs_name_exists():
    """docs/*.md and the README cite tests as file.py::name (name* for a family): each must be a test there."""
    cited = set()
    for doc in ['README.md'] + ['docs/' + name for name in os.listdir(os.path.join(ROOT, 'docs'))]:
        with open(os.path.join(ROOT, doc), encoding='utf-8') as f:
            cited |= {(doc,) + match for match in re.findall(r'(test_\w+\.py)::(test_\w+)(\*?)', f.read())}
    assert len(cited) > 40
    for doc, file, name, family in cited:
        with open(os.path.join(ROOT, 'tests', file), encoding='utf-8') as f:
            tests = set(re.findall(r'^def (test_\w+)\(', f.read(), re.M))
        assert any(t.startswith(name) for t in tests) if family else name in tests, (doc, file, name)
