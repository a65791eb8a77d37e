"""The shared exception classes, and the one way an optional dependency is imported (nnscratch/errors.py)."""
import sys

import pytest

from nnscratch.errors import MissingDependencyError, require


def test_require_returns_the_first_module_and_imports_the_others():
    import json.decoder

    assert require(["json", "json.decoder"], "json", "reading", "pip install json") is sys.modules["json"]
    assert require("json.decoder", "json", "reading", "pip install json") is json.decoder


def test_require_says_what_needed_the_package_and_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "absent_package", None)    # `import absent_package` raises ImportError

    class Special(MissingDependencyError):
        pass

    with pytest.raises(Special, match=r'^drawing needs Absent, which is not installed; install it with: '
                                      r'pip install "nnscratch\[absent\]"$') as info:
        require(["json", "absent_package"], "Absent", "drawing", 'pip install "nnscratch[absent]"', Special)
    assert isinstance(info.value, ImportError) and isinstance(info.value.__cause__, ImportError)


def _plot(tmp_path):
    from nnscratch.plot import _require_matplotlib
    _require_matplotlib()


def _export(tmp_path):
    from nnscratch.io.onnx_graph import require_onnx
    require_onnx()


def _run_onnx(tmp_path):
    from nnscratch.verify import _require_onnxruntime
    _require_onnxruntime()


def _read_image(tmp_path):
    from nnscratch.images import read_image
    path = tmp_path / "digit.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n")
    read_image(path)


@pytest.mark.parametrize("hidden, use, message", [
    ("matplotlib", _plot, r'^plotting needs matplotlib, which is not installed; install it with: '
                          r'pip install "nnscratch\[plot\]"$'),
    ("onnx", _export, r'^ONNX export needs the onnx package, which is not installed; install it with: '
                      r'pip install "nnscratch\[onnx\]"$'),
    ("onnxruntime", _run_onnx, r'^running ONNX files needs onnxruntime, which is not installed; install it with: '
                               r'pip install "nnscratch\[onnx\]"$'),
    ("PIL", _read_image, r'^reading images needs Pillow, which is not installed; install it with: '
                         r'pip install "nnscratch\[image\]"$'),
], ids=["plot", "onnx export", "onnxruntime", "images"])
def test_every_optional_dependency_is_refused_the_same_way(tmp_path, monkeypatch, hidden, use, message):
    for name in [m for m in sys.modules if m == hidden or m.startswith(hidden + ".")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, hidden, None)
    with pytest.raises(MissingDependencyError, match=message):
        use(tmp_path)


def test_the_onnx_error_is_a_missing_dependency_and_an_import_error():
    from nnscratch.io.onnx_export import MissingONNXError
    from nnscratch.plot import MissingDependencyError as from_plot

    assert issubclass(MissingONNXError, MissingDependencyError) and issubclass(MissingONNXError, ImportError)
    assert from_plot is MissingDependencyError
