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


def test_readme_lm_msn_example_runs(capsys, tmp_path, monkeypatch):
    """The LM-MSN example (third python block) on the tokenizer and codes of the first two, with the real SmolLM2."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks[:2]:
        exec(compile(block, "README.md", "exec"), namespace)
    capsys.readouterr()
    exec(compile(blocks[2], "README.md", "exec"), namespace)
    printed = capsys.readouterr().out.strip()
    codes = len(namespace["sound"].audio_codes)
    assert 1 <= codes <= 8
    assert printed == (f"49410 ['attention_mask', 'input_ids', 'labels', 'loss_weights'] {codes} "
                       f"(1, {codes * 1024})")  # 49152 SmolLM2 tokens + <soa>, <eoa>, 256 codes
    with_grad = [name for name, p in namespace["audio_llm"].named_parameters() if p.grad is not None]
    assert with_grad and all("lora_" in name or "trainable_tokens" in name for name in with_grad)


def test_readme_mint_and_pipeline_examples_run(capsys):
    """The MINT example (fourth python block) with the real YAMNet, all-MiniLM-L6-v2 and SmolLM2, then the pipeline
    example (fifth) on its models."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    namespace: dict = {}
    exec(compile(blocks[3], "README.md", "exec"), namespace)
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert printed == "['attention_mask', 'audio_attention_mask', 'audio_values', 'input_ids'] (2, 2) (1, 5) (1, 3)"
    assert all(p.grad is None for p in namespace["stage2"].language_model.parameters())
    exec(compile(blocks[4], "README.md", "exec"), namespace)
    assert capsys.readouterr().out.strip().splitlines()[-1] == "[2, 2] ['label', 'score'] ['generated_text']"
