"""docs/visualize.md shows the commands that made its pictures: the same ones docs/visualize_examples.py runs,
and every picture it shows exists."""
import importlib.util
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def example_commands():
    spec = importlib.util.spec_from_file_location("visualize_examples", ROOT / "docs" / "visualize_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines COMMANDS; trains nothing outside __main__
    return module.COMMANDS + module.LONG_RUN_COMMANDS


def test_the_page_shows_the_commands_that_made_its_pictures():
    page = (ROOT / "docs" / "visualize.md").read_text()
    shown = [line.strip() for block in re.findall(r"```bash\n(.*?)\n```", page, re.S) for line in block.splitlines()
             if line.strip().startswith(("nnscratch show", "nnscratch plot"))]
    assert shown == example_commands()


def test_every_picture_on_the_page_exists_and_was_made_by_a_command():
    page = (ROOT / "docs" / "visualize.md").read_text()
    pictures = re.findall(r"!\[[^\]]*\]\((images/[^)]+\.png)\)", page)
    made = {c.split(" -o ")[1].removeprefix("docs/") for c in example_commands()}
    assert pictures and set(pictures) == made
    for picture in pictures:
        assert (ROOT / "docs" / picture).stat().st_size > 3_000
