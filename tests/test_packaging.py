"""The wheel holds every package folder and data file of the repository, found without a hand-kept list."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOT_PACKAGED = {"tests", "benchmarks", "examples", "scripts", "build", "work", "runs", ".venv", ".git", ".hf_home"}


def test_every_folder_with_an_init_file_and_every_data_file_is_in_the_wheel(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_PACKAGED, "*.egg-info", "__pycache__"))
    # a folder added later (a new model family) is packaged without editing pyproject.toml or setup.py
    (source / "modeling" / "new_family").mkdir()
    (source / "modeling" / "new_family" / "__init__.py").write_text("")
    packages = [path.parent.relative_to(source) for path in source.rglob("__init__.py")]
    modules = [path for path in source.rglob("*.py") if (path.parent / "__init__.py").exists()]
    data = [*source.glob("hub_cards/*.md"), *source.glob("processing/templates/*.json"),
            *source.glob("training/configs/*")]
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "--wheel-dir",
         str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("soundlm-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    assert Path("modeling/new_family") in packages and Path("processing/tasks") in packages
    for package in packages:
        assert (Path("soundlm") / package / "__init__.py").as_posix() in names, package
    for module in modules:
        if module.name != "setup.py":
            assert (Path("soundlm") / module.relative_to(source)).as_posix() in names, module
    assert data
    for path in data:
        assert (Path("soundlm") / path.relative_to(source)).as_posix() in names, path
    assert not any(name.startswith(("soundlm/tests/", "soundlm/examples/", "soundlm/benchmarks/")) for name in names)
    assert "soundlm/setup.py" not in names and "soundlm/cli.py" in names
