"""Dependencies point one way (data -> models -> engine -> eval -> run/CLI and the applications;
weights below models; the run's data settings below eval; inside data, the shard format below the
loading pipeline and the sources): every `import` in the package, also those inside functions,
read from the source."""

import ast

import pytest

from tests.helpers import ROOT

PACKAGE = ROOT / "vlbert"
# what sits on top of evaluation: the runs, the command line and the applications
APPLICATIONS = ("vlbert.run", "vlbert.commands", "vlbert.cli", "vlbert.quickstart", "vlbert.demo", "vlbert.bench")
# package -> the vlbert packages and modules it must not import
FORBIDDEN = {
    "vlbert.weights": ("vlbert.models", "vlbert.factory", "vlbert.engine", "vlbert.run", "vlbert.eval", "vlbert.data"),
    "vlbert.data": ("vlbert.models", "vlbert.factory", "vlbert.engine", "vlbert.run", "vlbert.eval", "vlbert.weights"),
    "vlbert.data.shards": ("vlbert.data.pipeline", "vlbert.data.sources"),  # the format is below both
    "vlbert.data.pipeline": ("vlbert.data.sources",),
    "vlbert.data.sources": ("vlbert.data.pipeline",),
    "vlbert.models": ("vlbert.factory", "vlbert.engine", "vlbert.run", "vlbert.eval", "vlbert.commands"),
    "vlbert.tasks": ("vlbert.",),
    "vlbert.rundata": ("vlbert.eval", *APPLICATIONS),
    "vlbert.eval": APPLICATIONS,
}


def imports_of(path):
    """The absolute module names a file imports (`from vlbert import x` counts as `vlbert`)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def module_name(path):
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


MODULES = {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_layer_does_not_import_the_layers_above_it(package):
    wrong = {
        f"{module} imports {name}"
        for module, names in MODULES.items() if module == package or module.startswith(package + ".")
        for name in names for banned in FORBIDDEN[package] if name == banned or name.startswith(banned.rstrip(".") + ".")
    }
    assert not wrong


def test_the_package_uses_its_modules_not_the_lazy_front_door():
    """`import vlbert` / `from vlbert import create_model` resolve names lazily (for users); inside
    the package each module imports the module that defines the name, so the dependency shows."""
    assert not [module for module, names in MODULES.items() if "vlbert" in names and module != "vlbert"]
