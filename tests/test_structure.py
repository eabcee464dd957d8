"""The code's layers import downward only: util <- data, models, metrics <- options, training <- entry points
(train.py, test.py, enhancer.py, scripts/), each module checked alone in a process that holds none of the
project's modules, so no import cycle can hide."""
import ast
import json
import re
import os
import subprocess
import sys

from conftest import ROOT

ENTRY_POINTS = {'train', 'test', 'enhancer', 'scripts'}
MAY_IMPORT = {'util': set(), 'data': {'util'}, 'models': {'util'}, 'metrics': {'util'},
              'options': {'util', 'data', 'models'}, 'training': {'util', 'models', 'metrics'}}
# Third-party packages the layers import, loaded once; each module is then imported in a child forked from that
# interpreter, holding no module of this project, so each module still starts alone and no import cycle can hide.
PRELOAD = ('torch', 'numpy', 'PIL.Image', 'scipy.ndimage', 'skimage.metrics', 'huggingface_hub', 'open_clip')
PROBE = """import importlib, json, os, sys, traceback
sys.path.insert(0, {root!r})
for name in {preload!r}:
    importlib.import_module(name)
project = {project!r}
assert not project & {{name.split('.')[0] for name in sys.modules}}
for module in json.loads(sys.stdin.read()):
    read, write = os.pipe()
    if os.fork() == 0:
        try:
            importlib.import_module(module)
            result = {{'imported': sorted({{name.split('.')[0] for name in sys.modules}} & project)}}
        except BaseException:
            result = {{'error': traceback.format_exc()[-2000:]}}
        os.write(write, json.dumps(result).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        print(json.dumps([module, json.loads(f.read())]), flush=True)
    os.wait()
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
    probe = PROBE.format(root=ROOT, preload=PRELOAD, project=project)
    result = subprocess.run([sys.executable, '-c', probe], input=json.dumps(modules), cwd='/', capture_output=True,
                            text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert result.returncode == 0, result.stderr[-2000:]
    found = dict(json.loads(line) for line in result.stdout.splitlines())
    assert list(found) == modules
    for module, outcome in found.items():
        assert 'error' not in outcome, (module, outcome.get('error'))
        layer = module.split('.')[0]
        imported = set(outcome['imported']) - {layer}
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


def imported_modules(path):
    """The modules a source file imports (relative ones as written, e.g. '.nrn')."""
    with open(os.path.join(ROOT, path)) as f:
        tree = ast.parse(f.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = '.' * node.level + (node.module or '')
            names |= {base} if node.module else {base + alias.name for alias in node.names}
    return names


def test_inference_starts_without_the_export_packages():
    """Enhancing (models/inference.py, load_enhancer) imports neither huggingface_hub nor onnx: only export and Hub
    loading need them."""
    probe = ('import sys; sys.path.insert(0, %r); import models.inference, enhancer; '
             'print(sorted({"huggingface_hub", "onnx", "safetensors"} & set(sys.modules)))' % ROOT)
    result = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True, timeout=300, cwd='/')
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == '[]'


def test_how_networks_run_is_told_by_the_networks_not_found_by_class():
    """models/execution.py (recomputation, compilation) imports no network; train.py names no loss or optimizer of
    NeRCo (the model says which it has)."""
    networks = {'.' + name[:-3] for name in os.listdir(os.path.join(ROOT, 'models'))} - {'.execution'}
    assert not imported_modules('models/execution.py') & networks
    from models.NeRCo_model import D_LOSSES, G_LOSSES
    with open(os.path.join(ROOT, 'train.py')) as f:
        strings = {node.value for node in ast.walk(ast.parse(f.read())) if isinstance(node, ast.Constant)}
    assert 'latest' in strings and not strings & (set(G_LOSSES) | set(D_LOSSES) | {'G', 'D'})
