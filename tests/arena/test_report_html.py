"""report.html opens in a real browser (headless Chromium) with its tables and images rendered."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from contrived import results

from twopaths.arena.report import write_report
from twopaths.viz import save_grid

CHROMIUM = next((shutil.which(b) for b in ("chromium-headless-shell", "chromium", "chromium-browser",
                                             "google-chrome") if shutil.which(b)), None)


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium (make test installs chromium-headless-shell "
                                              "with apt-get where it runs as root)")
def test_report_html_renders_tables_and_images_in_chromium(tmp_path):
    import torch

    res = results()
    save_grid(torch.rand(16, 1, 28, 28) * 2 - 1, tmp_path / "images" / "grid.png", nrow=4)
    res["suites"]["fashion-mnist"]["contenders"]["ddpm"]["quality"]["grid"] = "images/grid.png"
    _, page = write_report(res, tmp_path)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    loaded = re.search(r'data-images-loaded="(\d+)/(\d+)"', dom)
    assert loaded, "the page's load handler did not run"
    ok, total = map(int, loaded.groups())
    assert total >= 3 and ok == total  # the grid and the plots, all decoded
    assert int(re.search(r'data-tables="(\d+)"', dom).group(1)) >= 6
    assert "Generation quality" in dom and "pixel-gpt" in dom
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *flags, "--window-size=1200,1600", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 20_000  # a rendered page, not a blank one
