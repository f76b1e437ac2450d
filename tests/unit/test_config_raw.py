"""config.raw: values as written, with nothing resolved (not even a missing variable)."""

from __future__ import annotations

from omegaconf import DictConfig, ListConfig, OmegaConf

from nemo_gym.config.raw import raw_child, raw_items, raw_value


def test_values_are_read_as_written() -> None:
    cfg = OmegaConf.create(
        {
            "a": "${b.x}",
            "b": {"x": 1, "key": "${oc.env:GYM_SURELY_UNSET_VARIABLE}"},
            "l": [{"y": "${nowhere}"}, "${a}", 3],
            "m": "???",
        }
    )
    items = dict(raw_items(cfg))
    assert items["a"] == "${b.x}" and items["m"] == "???"
    assert isinstance(items["b"], DictConfig) and isinstance(items["l"], ListConfig)
    listed = raw_items(items["l"])
    assert isinstance(listed[0][1], DictConfig) and listed[1:] == [(1, "${a}"), (2, 3)]
    assert raw_value(cfg, "b.key") == "${oc.env:GYM_SURELY_UNSET_VARIABLE}"
    assert raw_value(cfg, "b.nothing") is None and raw_value(cfg, "a.deeper") is None
    assert raw_child(cfg, "a") == "${b.x}" and raw_child(cfg, "zzz") is None
    assert raw_child(cfg, "m") is None  # missing (???) reads as unset, as `"m" in cfg` says
