"""The README's Python example runs and gives the shapes it says (so the documentation cannot rot)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README has no python example"
    exec(compile(blocks[0], "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "torch.Size([1, 1, 44]) torch.Size([1, 1, 44100]) 21.53 tokens/s, 172 bit/s" in printed


def test_readme_data_example_runs(capsys, tmp_path, monkeypatch):
    """The data example (second python block) runs on the model of the first, in a scratch folder."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    capsys.readouterr()
    exec(compile(blocks[1], "README.md", "exec"), namespace)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[False, False, True] (1, 16000) [44, 44, 22]"  # ceil(samples / 1024) per window
    assert lines[1].startswith("a steady beep<soa><a_") or lines[1].startswith("<soa><a_")


def test_readme_starts_with_the_two_commands_ci_runs():
    text = README.read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()]
    commands = [command for command in commands if command]
    assert commands == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    assert "bash scripts/test.sh" in (README.parent / ".ci" / "run").read_text()
