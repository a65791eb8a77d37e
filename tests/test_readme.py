"""README's fresh-machine commands are the ones CI runs and the ones the docs promise."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def bash_blocks(text):
    return re.findall(r"```bash\n(.*?)\n```", text, re.S)


def test_ci_runs_exactly_readmes_test_command():
    readme = (ROOT / "README.md").read_text()
    test_commands = [b for b in bash_blocks(readme) if "pytest" in b]
    assert len(test_commands) == 1
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_commands[0] in ci_lines


def test_readme_trains_lenet5():
    readme = (ROOT / "README.md").read_text()
    assert any("nnscratch train lenet5" in b and "pip install" in b for b in bash_blocks(readme))


def test_readmes_python_snippets_run(capsys):
    readme = (ROOT / "README.md").read_text()
    namespace = {}
    blocks = re.findall(r"```python\n(.*?)\n```", readme, re.S)
    assert len(blocks) >= 2
    for block in blocks:  # in order, one namespace: the second builds on the first's imports
        exec(compile(block, "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "Connected to" in out and "add_1 (Add)" in out
