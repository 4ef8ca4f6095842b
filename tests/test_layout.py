"""The package's layout: imports flow one way between subpackages, no import circle, old files load.

The order, lowest first (a module may import its own unit and any lower one):
see `LAYERS` below, the README's "Layout" and docs/ARCHITECTURE.md.
"""

import ast
import importlib.util
import json
import os

import keras
import numpy as np
import pytest

import keras_pixelcnn as kp

PACKAGE = "keras_pixelcnn"
# Units of the package, lowest first; units in one tuple share a rank and must not import each other.
LAYERS = [
    ("_version",),
    ("layers",),
    ("distributions",),
    ("models",),
    ("likelihood",),
    ("causality", "sampling", "scoring"),
    ("data",),
    ("training",),
    ("export",),
    ("cli",),
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}
ROOT_RANK = len(LAYERS)  # keras_pixelcnn/__init__.py: the public API, above everything
NO_TENSORFLOW = ("layers", "distributions", "models")  # keras.ops only, so they run on any backend
MAX_LINES = 400
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def package_files():
    """{module name: source path} for the package, its `cli` and its `export` (found where installed)."""
    roots = {PACKAGE: os.path.dirname(kp.__file__)}
    for sub in ("cli", "export"):
        roots[f"{PACKAGE}.{sub}"] = importlib.util.find_spec(f"{PACKAGE}.{sub}").submodule_search_locations[0]
    files = {}
    for prefix, root in roots.items():
        for directory, subdirs, names in os.walk(root):
            subdirs[:] = [d for d in subdirs if d != "__pycache__"]
            relative = os.path.relpath(directory, root)
            parts = [] if relative == "." else relative.split(os.sep)
            for name in names:
                if name.endswith(".py"):
                    stem = name[:-3]
                    module = ".".join([prefix] + parts + ([] if stem == "__init__" else [stem]))
                    files[module] = os.path.join(directory, name)
    return files


def import_graph(sources):
    """{module: {(imported module, line)}} over the package's own modules, from `{module: source text}`.

    Every import statement counts, also those inside functions (lazy imports still
    run against the order). `from a.b import c` names module `a.b.c` when it exists.
    """
    modules = set(sources)
    graph = {}
    for module, text in sources.items():
        edges = set()
        is_package = any(other.startswith(module + ".") for other in modules)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                names = [(alias.name, None) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    anchor = module.split(".")[:len(module.split(".")) - node.level + (1 if is_package else 0)]
                    base = ".".join(anchor + ([base] if base else []))
                names = [(base, alias.name) for alias in node.names]
            else:
                continue
            for base, name in names:
                target = f"{base}.{name}" if name and f"{base}.{name}" in modules else base
                if target == PACKAGE or target.startswith(PACKAGE + "."):
                    edges.add((target, node.lineno))
        graph[module] = edges
    return graph


def unit_of(module):
    parts = module.split(".")
    return None if len(parts) == 1 else parts[1]


def against_the_order(graph):
    """Imports from a unit to a higher one, or between two units of the same rank."""
    found = []
    for module, edges in graph.items():
        unit = unit_of(module)
        rank = ROOT_RANK if unit is None else RANK[unit]
        for target, line in edges:
            other = unit_of(target)
            other_rank = ROOT_RANK if other is None else RANK[other]
            if other != unit and other_rank >= rank:
                found.append(f"{module}:{line} imports {target}")
    return sorted(found)


def circles(graph):
    """Import circles between modules, each as a list of modules (depth-first search)."""
    found, state = [], {}

    def visit(module, path):
        state[module] = "open"
        for target, _ in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                found.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return found


@pytest.fixture(scope="module")
def sources():
    texts = {}
    for module, path in package_files().items():
        with open(path) as handle:
            texts[module] = handle.read()
    return texts


def test_every_unit_has_a_rank(sources):
    units = {unit_of(module) for module in sources} - {None}
    assert units <= set(RANK), f"units without a place in LAYERS: {sorted(units - set(RANK))}"


def test_imports_follow_the_order(sources):
    assert against_the_order(import_graph(sources)) == []


def test_no_import_circle(sources):
    assert circles(import_graph(sources)) == []


def test_the_checks_catch_a_circle_and_an_upward_import():
    """The two checks above on a made-up package: a circle training <-> jax, and layers importing models."""
    made_up = {
        f"{PACKAGE}.training.tf_backend": f"from {PACKAGE}.training import jax_backend\n",
        f"{PACKAGE}.training.jax_backend": f"def f():\n    from {PACKAGE}.training.tf_backend import fit\n",
        f"{PACKAGE}.layers.masks": f"import {PACKAGE}.models.registry\n",
        f"{PACKAGE}.models.registry": "import keras\n",
    }
    graph = import_graph(made_up)
    assert circles(graph) == [[f"{PACKAGE}.training.jax_backend", f"{PACKAGE}.training.tf_backend",
                               f"{PACKAGE}.training.jax_backend"]]
    assert against_the_order(graph) == [f"{PACKAGE}.layers.masks:1 imports {PACKAGE}.models.registry"]


def test_lower_units_do_not_import_tensorflow(sources):
    found = []
    for module, text in sources.items():
        if unit_of(module) in NO_TENSORFLOW:
            for node in ast.walk(ast.parse(text)):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                found += [f"{module}:{node.lineno}" for name in names if name.split(".")[0] == "tensorflow"]
    assert found == []


def test_modules_are_short_and_packages_say_what_they_hold(sources):
    long = {module: text.count("\n") for module, text in sources.items() if text.count("\n") > MAX_LINES}
    assert long == {}
    for module, path in package_files().items():
        if path.endswith("__init__.py"):
            docstring = ast.get_docstring(ast.parse(sources[module]))
            assert docstring and "import" in docstring.lower(), f"{module}: say what it holds and what it may import"


# The names `import keras_pixelcnn as kp` exported before the split into subpackages.
PUBLIC_API = ["ARCHITECTURES", "BitsPerDim", "Categorical", "ConcatELU", "DiagonalLSTM",
              "DiscretizedLogisticMixture", "GatedActivation", "MaskedConv2D", "PixelDistribution", "PixelNLL",
              "RowLSTM", "ShiftDown", "ShiftRight", "bits_per_dim", "build_model", "causal_mask", "complete",
              "distribution_of", "load_pretrained", "log_prob", "loss_and_metric", "sample", "score"]


def test_public_api_keeps_its_names():
    assert set(PUBLIC_API) <= set(kp.__all__)
    for name in kp.__all__:
        assert getattr(kp, name) is not None
    assert kp.__version__


with open(os.path.join(FIXTURES, "legacy_models.json")) as _handle:
    LEGACY = json.load(_handle)


@pytest.mark.parametrize("stem", sorted(LEGACY))
def test_files_written_before_the_split_load_and_score_the_same(stem):
    """`.keras` files written by the flat-layout code (tests/fixtures/make_legacy_models.py) load unchanged."""
    record = LEGACY[stem]
    model = keras.saving.load_model(os.path.join(FIXTURES, stem + ".keras"), compile=False)
    images = np.asarray(record["images"])
    log_p = kp.log_prob(model, images, record["labels"])
    np.testing.assert_allclose(log_p, record["log_prob"], rtol=1e-5)
