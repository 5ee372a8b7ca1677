"""The listening report: its files, and what headless Chromium sees when it opens the page (no console error, every
audio element's source plays with a non-zero duration, every image loads) and a screenshot that is not blank."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import tiny_config_kwargs, write_manifest

from soundlm import MSNTokenizerConfig, MSNTokenizerModel
from soundlm.evaluation.listening_report import listening_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--allow-file-access-from-files"]
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (scripts/test.sh installs "
                                                             "the Debian package chromium)")


def _model(objective: str) -> MSNTokenizerModel:
    torch.manual_seed(0)
    model = MSNTokenizerModel(MSNTokenizerConfig(**tiny_config_kwargs(decoder_objective=objective)))
    model.set_latent_statistics(torch.full((32,), -4.0), torch.full((32,), 2.0))
    return model.eval()


@pytest.fixture(scope="module")
def report(tmp_path_factory, real_clips):
    tmp = tmp_path_factory.mktemp("listening")
    manifest = write_manifest(tmp / "data", list(real_clips))
    rows = (tmp / "data" / "manifest.csv").read_text().splitlines()
    (tmp / "data" / "manifest.csv").write_text(
        "\n".join([rows[0]] + [line.replace(",train,", ",test,") for line in rows[1:]]) + "\n")
    evaluation = tmp / "mint_report"  # an evaluation report folder as the demo writes them
    (evaluation / "sounds").mkdir(parents=True)
    sf.write(evaluation / "sounds" / "0_rain.wav", 0.1 * np.sin(np.arange(8000) / 5.0), 8000)
    (evaluation / "report.json").write_text(json.dumps({
        "captions": {"samples": [{"reference": "a dog <barks>", "generated": "rain & wind"}]},
        "sounds": [{"caption": "rain", "wav": str(evaluation / "sounds" / "0_rain.wav"), "yamnet_generated": ["Rain"]}],
    }))
    (evaluation / "report.md").write_text("Retrieval:\n\n| model | R@1 |\n|---|---:|\n| stage 1 | 44.2 |\n")
    shutil.copyfile(tmp / "data" / "manifest.csv", evaluation / "not_a_plot.csv")
    page = listening_report({"VQ + FM": _model("flow_matching"), "VQ + MSE": _model("mse")}, str(manifest),
                            tmp / "out", cache_dir=str(tmp / "cache"), fm_steps=(2, 4), temperatures=(0.0, 1.0),
                            reports=(evaluation,))
    return page


def test_report_files_and_page(report):
    text = report.read_text()
    sources = re.findall(r'src="([^"]+)"', text)
    audio = [s for s in sources if s.endswith(".wav")]
    images = [s for s in sources if s.endswith(".png")]
    # one clip per category (the manifest has two: noise, speech); per clip: original, front end, FM at 2 steps x 2
    # temperatures, MSE once, then the report's generated sound; per clip a spectrogram PNG and two code strips
    assert len(audio) == 2 * 7 + 1 and len(images) == 2 * 3
    assert all((report.parent / source).is_file() for source in sources)
    assert "VQ + FM, 4 steps, T=0" in text and "a dog &lt;barks&gt;" in text and "rain &amp; wind" in text
    assert "<th>R@1</th>" in text and "<td>44.2</td>" in text
    info = sf.info(report.parent / audio[0])
    assert info.samplerate == 8000 and info.frames > 0


@needs_chromium
def test_headless_chromium_plays_every_audio_and_loads_every_image(report):
    result = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, "--virtual-time-budget=20000", "--dump-dom",
                             report.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    found = re.search(r'<pre id="selfcheck">(.*?)</pre>', result.stdout, re.S)
    assert found and found.group(1), "the page's self-check did not run"
    seen = json.loads(found.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
    assert seen["errors"] == []
    assert "Uncaught" not in result.stderr
    page = report.read_text()
    assert len(seen["audio"]) == page.count("<audio") and len(seen["images"]) == page.count("<img")
    assert all(item["error"] is None and item["duration"] > 0 for item in seen["audio"]), seen["audio"]
    assert all(item["width"] > 0 and item["height"] > 0 for item in seen["images"]), seen["images"]


@needs_chromium
def test_screenshot_of_the_page_is_not_blank(report, tmp_path):
    import matplotlib.image

    shot = tmp_path / "shot.png"
    result = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, "--virtual-time-budget=20000", "--window-size=1200,1600",
                             f"--screenshot={shot}", report.resolve().as_uri()],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (1600, 1200)
    assert pixels[..., :3].std() > 0.05  # headings, players and spectrograms, not a blank page


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="models is empty"):
        listening_report({}, "x.csv", tmp_path)
    with pytest.raises(ValueError, match="is not a folder"):
        listening_report({"a": _model("mse")}, "x.csv", tmp_path, reports=(tmp_path / "missing",))
