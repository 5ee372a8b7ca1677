import pytest

from soundlm.training.common.config import apply_overrides, load_config


def test_overrides_parse_yaml_values_and_nested_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 0.001\n  max_steps: 10\nmodel:\n  hidden_size: 64\n")
    config = load_config(path, ["--train.lr=3e-4", "--train.max_steps", "20", "--model.hidden_size=128"])
    assert config["train"] == {"lr": 3e-4, "max_steps": 20}
    assert config["model"]["hidden_size"] == 128


def test_unknown_keys_fail_unless_the_section_is_open():
    config = {"train": {"lr": 1.0}, "model": {}}
    with pytest.raises(ValueError, match=r"unknown key 'lrr' \(known here: lr\)"):
        apply_overrides(config, ["--train.lrr=2"])
    with pytest.raises(ValueError, match="section 'data' is not in the config"):
        apply_overrides(config, ["--data.manifest=x.csv"])
    opened = apply_overrides(config, ["--model.frontend_config.num_mel_bins=40"], open_sections=("model",))
    assert opened["model"] == {"frontend_config": {"num_mel_bins": 40}}
    assert config["model"] == {}  # the input is not modified


def test_malformed_overrides_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="must look like --section.key=value"):
        apply_overrides({}, ["train.lr=1"])
    with pytest.raises(ValueError, match="has no value"):
        apply_overrides({"a": 1}, ["--a"])
    with pytest.raises(ValueError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
