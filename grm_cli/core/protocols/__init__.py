"""The judge protocols grm speaks, one module per judge family (see `base.Protocol`).

`get_protocol(name)` gives one; `deepseek-grm` (the paper's App. G layout, on a template from prompts/) is
the default. Modules load on first use, so listing the names costs nothing.
"""

from __future__ import annotations

import importlib

from grm_cli.core.protocols.base import Protocol, TaggedVerdict, protocol_texts
from grm_cli.errors import InputError

DEFAULT_PROTOCOL = "deepseek-grm"

# name -> "module:Class"
_PROTOCOLS = {
    "deepseek-grm": "grm_cli.core.protocols.deepseek_grm:DeepSeekGRM",
    "prometheus-absolute": "grm_cli.core.protocols.prometheus:PrometheusAbsolute",
    "prometheus-relative": "grm_cli.core.protocols.prometheus:PrometheusRelative",
    "flow-judge": "grm_cli.core.protocols.flow_judge:FlowJudge",
    "selene-absolute": "grm_cli.core.protocols.selene:SeleneAbsolute",
    "selene-pairwise": "grm_cli.core.protocols.selene:SelenePairwise",
    "skywork-critic": "grm_cli.core.protocols.skywork:SkyworkCritic",
    "mt-bench-single": "grm_cli.core.protocols.mt_bench:MTBenchSingle",
    "mt-bench-pairwise": "grm_cli.core.protocols.mt_bench:MTBenchPairwise",
    "auto-j-pairwise": "grm_cli.core.protocols.auto_j:AutoJPairwise",
}


def protocol_names() -> list[str]:
    return list(_PROTOCOLS)


def get_protocol(name: str = DEFAULT_PROTOCOL, *, template: str | None = None) -> Protocol:
    """A protocol by name. `template` picks DeepSeek-GRM's layout (a prompts/ name or a YAML path); the
    other protocols speak their judge's own words and take none."""
    if name not in _PROTOCOLS:
        raise InputError(f"unknown protocol {name!r}: expected one of {', '.join(_PROTOCOLS)} (grm protocols lists them)")
    module, cls = _PROTOCOLS[name].split(":")
    kind = getattr(importlib.import_module(module), cls)
    if name == DEFAULT_PROTOCOL:
        return kind.from_template(template or "pointwise")
    if template is not None and template != "pointwise":
        raise InputError(f'--template picks a layout of the deepseek-grm protocol; protocol "{name}" speaks its judge\'s own words (leave --template out)')
    return kind()


__all__ = ["DEFAULT_PROTOCOL", "Protocol", "TaggedVerdict", "get_protocol", "protocol_names", "protocol_texts"]
