"""The study framework, the HTML report and the study/report commands."""
import base64
import json
import re

import pytest

from sigprop.cli import main
from sigprop.report import write_report
from sigprop.studies import STUDIES, StudyResult, get_study
from sigprop.studies._base import Table, save_figure


def _fake_result(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [3, 1, 2])
    png = save_figure(fig, tmp_path, "curve")
    table = Table(["layer", "theory", "measured"], [[1, 0.5, 0.4999], [2, 0.25, "n/a"]], caption="a <caption>")
    return StudyResult("fake", "A fake study", "nowhere", "First paragraph.\n\nSecond & last.", [png], [table],
                       {"x": 1.5}, {"seed": 0}, 1.25)


def test_report_is_self_contained_html_with_every_figure(tmp_path):
    res = _fake_result(tmp_path)
    page = write_report([res, res], tmp_path / "r.html", title="t")
    text = page.read_text()
    imgs = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", text)
    assert len(imgs) == 2
    assert base64.b64decode(imgs[0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "a &lt;caption&gt;" in text and "Second &amp; last." in text  # escaped, not raw HTML
    assert "http" not in text.replace("http-equiv", "")  # nothing fetched from elsewhere


def test_study_result_saves_json_and_markdown(tmp_path):
    res = _fake_result(tmp_path)
    res.save(tmp_path)
    d = json.loads((tmp_path / "result.json").read_text())
    assert d["figures"] == ["curve.png"] and d["tables"][0]["rows"][0] == [1, 0.5, 0.4999]
    assert (tmp_path / "curve.svg").exists()
    md = (tmp_path / "result.md").read_text()
    assert "| 1 | 0.5 | 0.4999 |" in md and "![curve](curve.png)" in md


@pytest.mark.parametrize("name", list(STUDIES))
def test_every_study_module_has_the_study_interface(name):
    mod = get_study(name)
    assert mod.TITLE and mod.SOURCE and callable(mod.run) and callable(mod.add_arguments)


def test_unknown_study_is_a_one_line_error(capsys):
    assert main(["study", "no-such-study"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main(["report", "--only", "no-such-study", "--out", "/tmp/x"]) == 2
    assert "unknown study 'no-such-study'" in capsys.readouterr().err


def test_report_links_the_view(tmp_path):
    page = write_report([], tmp_path / "r.html", title="t", view="view.html")
    assert "<a href='view.html'>Interactive signal-propagation view</a>" in page.read_text()
