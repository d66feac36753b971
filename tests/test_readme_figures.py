"""Every figure block of README.md, training/README.md and export/README.md is what its stored results render.

`benchmarks/render_readme.py` renders the blocks from `benchmarks/results/*.json`; a figure typed by
hand, or a result rerun without rendering, fails here. The check itself is shown to fail on a copy
with one figure edited.
"""

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _renderer():
    spec = importlib.util.spec_from_file_location("render_readme", ROOT / "benchmarks" / "render_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render_readme = _renderer()


@pytest.fixture
def checkout(tmp_path):
    """A copy of the documents and the stored results, to edit."""
    for document in render_readme.DOCUMENTS:
        (tmp_path / document).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / document, tmp_path / document)
    shutil.copytree(ROOT / render_readme.RESULTS, tmp_path / render_readme.RESULTS)
    return tmp_path


def test_every_block_is_what_its_stored_results_render():
    assert render_readme.differing(ROOT) == {}, "run: python benchmarks/render_readme.py"


def test_every_renderer_has_its_block_and_its_results():
    texts = {document: (ROOT / document).read_text() for document in render_readme.DOCUMENTS}
    shown = [match["name"] for text in texts.values() for match in render_readme.BLOCK.finditer(text)]
    assert sorted(shown) == sorted(render_readme.BLOCKS), "a block without a renderer, or a renderer without a block"
    for name, (_, files) in render_readme.BLOCKS.items():
        for file in files:
            record = json.loads((ROOT / render_readme.RESULTS / file).read_text())
            assert {"command", "date", "machine", "packages", "figures", "short_run"} <= set(record), (name, file)
            assert record["machine"]["cpu"] and record["machine"]["cores"] >= 1, (name, file)
        assert "_From `" in render_readme.render_text(texts[_document_of(name, texts)]), name


def _document_of(name, texts):
    return next(document for document, text in texts.items() if f"<!-- figures:{name} -->" in text)


def test_a_figure_edited_by_hand_fails_the_check(checkout):
    readme = checkout / "README.md"
    text = readme.read_text()
    figure = "4,246,016 / 35,505,152"  # the demo's mult-adds, rendered from demo.json
    assert text.count(figure) == 1
    readme.write_text(text.replace(figure, "4,246,016 / 36,012,032"))
    assert list(render_readme.differing(checkout)) == ["README.md"]
    assert render_readme.main(["--check", "--root", str(checkout)]) == 1
    assert render_readme.main(["--root", str(checkout)]) == 0  # rendering puts the measured figure back
    assert readme.read_text() == text and render_readme.main(["--check", "--root", str(checkout)]) == 0


def test_a_rerun_result_changes_its_figures(checkout):
    path = checkout / render_readme.RESULTS / "demo.json"
    record = json.loads(path.read_text())
    record["figures"]["wall_seconds"] = 1234.4
    path.write_text(json.dumps(record))
    changed = render_readme.differing(checkout)
    assert list(changed) == ["README.md"] and "| run | wall time | 1234 s |" in changed["README.md"]


def test_a_block_without_a_renderer_is_an_error():
    with pytest.raises(ValueError, match="Received: name='nothing'"):
        render_readme.render_text("<!-- figures:nothing -->\n1.0x\n<!-- /figures:nothing -->\n")
