"""The file form of a spec works on files inside packages (relative imports), as the module
form does, and gives the same class; user code's failures are one-line model errors."""

from __future__ import annotations

import sys
import textwrap

import pytest

from esrprof.cli import main
from esrprof.errors import ModelError, SpecError
from esrprof.loading import build, package_root, resolve


@pytest.fixture()
def project(tmp_path, monkeypatch):
    """proj/zz_srpkg/{__init__, layers}.py and proj/zz_srpkg/archs/{__init__, helpers, net}.py,
    where net.py imports its siblings and its parent package relatively."""
    root = tmp_path / "proj"
    pkg = root / "zz_srpkg"
    archs = pkg / "archs"
    archs.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (archs / "__init__.py").write_text("")
    (pkg / "layers.py").write_text(textwrap.dedent("""
        from torch import nn
        def block(c):
            return nn.Conv2d(c, c, 3, padding=1)
    """))
    (archs / "helpers.py").write_text("WIDTH = 8\n")
    (archs / "net.py").write_text(textwrap.dedent("""
        from torch import nn
        from ..layers import block
        from .helpers import WIDTH

        class Net(nn.Module):
            def __init__(self, width=WIDTH):
                super().__init__()
                self.head = nn.Conv2d(3, width, 3, padding=1)
                self.body = block(width)
                self.tail = nn.Conv2d(width, 3, 3, padding=1)

            def forward(self, x):
                return self.tail(self.body(self.head(x)))
    """))
    (archs / "broken.py").write_text("from .helpers import NOPE\n")
    (archs / "exits.py").write_text("import sys\nsys.exit(0)\n")
    yield root
    for name in [n for n in sys.modules if n == "zz_srpkg" or n.startswith("zz_srpkg.")]:
        del sys.modules[name]


def test_package_root_walks_up_to_the_top_package(project):
    root, dotted = package_root((project / "zz_srpkg" / "archs" / "net.py").resolve())
    assert root == project.resolve() and dotted == "zz_srpkg.archs.net"
    lone = project / "lone.py"
    lone.write_text("")
    assert package_root(lone.resolve()) == (project.resolve(), None)


def test_file_form_inside_a_package_is_the_module_form(project, monkeypatch):
    by_file = resolve(f"{project}/zz_srpkg/archs/net.py:Net")
    monkeypatch.syspath_prepend(str(project))
    by_module = resolve("zz_srpkg.archs.net:Net")
    assert by_file is by_module
    assert build(f"{project}/zz_srpkg/archs/net.py:Net").head.out_channels == 8


def test_both_forms_give_the_same_import_error(project, monkeypatch):
    with pytest.raises(ModelError) as by_file:
        resolve(f"{project}/zz_srpkg/archs/broken.py:Net")
    monkeypatch.syspath_prepend(str(project))
    with pytest.raises(ModelError) as by_module:
        resolve("zz_srpkg.archs.broken:Net")
    assert str(by_file.value) == str(by_module.value)
    assert "NOPE" in str(by_file.value)


def test_sys_exit_while_importing_is_a_model_error(project):
    with pytest.raises(ModelError, match=r"sys\.exit\(0\)"):
        resolve(f"{project}/zz_srpkg/archs/exits.py:Net")


def test_cli_profiles_a_file_inside_a_package(project, capsys):
    code = main(["profile", f"{project}/zz_srpkg/archs/net.py:Net", "--input-shape", "16x16"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "1x3x16x16" in out


def test_only_module_classes_are_built_and_nothing_is_called_first(tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "zz_factory.py").write_text(
        f"def make():\n    open({str(marker)!r}, 'w').close()\n")
    with pytest.raises(SpecError, match=r"not a torch\.nn\.Module class"):
        build(f"{tmp_path}/zz_factory.py:make")
    with pytest.raises(SpecError, match=r"not a torch\.nn\.Module class"):
        build("os:system", {"command": f"touch {marker}"})
    assert not marker.exists()


def test_constructor_sys_exit_is_a_model_error(tmp_path):
    (tmp_path / "zz_ctor.py").write_text(
        "import sys\nfrom torch import nn\nclass Net(nn.Module):\n"
        "    def __init__(self):\n        sys.exit(7)\n")
    with pytest.raises(ModelError, match=r"sys\.exit\(7\)"):
        build(f"{tmp_path}/zz_ctor.py:Net")
