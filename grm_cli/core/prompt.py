"""Templates (from prompts/*.yaml) and rendering a record, in one response order, into chat messages.

This is the one place that knows the prompt layout. Scoring, principle generation, hinted sampling
for rejective fine-tuning and the meta RM input all render through `render`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from grm_cli.core.records import Record
from grm_cli.core.score_line import BOX, ScoreLine
from grm_cli.errors import InputError
from grm_cli.yaml_file import read_yaml_mapping

KINDS = ("pointwise", "single", "judge")
# The meta RM's input (paper §2 / App. D.1): this instruction and the same sections, then a sampled
# trajectory (principles, critique, scores) as the assistant's turn.
META_USER = "Please score the responses.\n\n#### Conversation Context ####\n{context}\n#### Responses to be Scored ####\n{responses}"
MODES = ("self", "given", "none")  # who states the principles: the model, the user (pre-filled), nobody
_PLACEHOLDER = re.compile(r"\{(context|responses|n|example|i|response|best)\}")


def prompts_dir() -> Path:
    """Shipped templates: inside the installed package, or the repository's prompts/ in a source checkout."""
    package = Path(__file__).resolve().parent.parent
    for cand in (package / "prompts", package.parent / "prompts"):
        if cand.is_dir():
            return cand
    raise FileNotFoundError("grm's prompts/ folder is missing from this installation")


def builtin_templates() -> list[str]:
    return sorted(p.stem for p in prompts_dir().glob("*.yaml"))


def _fill(text: str, values: dict[str, str]) -> str:
    """Single-pass substitution: text that comes in through a value is never substituted again."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    kind: str
    score_min: int
    score_max: int
    min_responses: int
    max_responses: int
    user: str
    response_block: str
    principles_label: str
    critique_label: str
    scores_label: str
    hint: str
    path: str
    without_principles: tuple[tuple[str, str], ...] = ()  # (find, replace) edits of `user` for mode "none"
    meta_user: str = ""  # the meta RM's instruction (paper App. D.1); empty: META_USER

    def score_range(self, n: int) -> tuple[int, int]:
        """Allowed integers in the box: scores for pointwise/single, a 1-based index for judge."""
        if self.kind == "judge":
            return 1, n
        return self.score_min, self.score_max

    def user_text(self, mode: str = "self") -> str:
        """The instruction for a principles mode: "none" (the paper's ablation) asks for the analysis and
        scores only, by the template's own `without_principles` edits."""
        if mode != "none":
            return self.user
        if not self.without_principles:
            raise InputError(f'template "{self.name}" has no principles-free variant (key "without_principles"), so it cannot score with principles mode none', self.path)
        text = self.user
        for find, repl in self.without_principles:
            text = text.replace(find, repl)
        return text

    def box_count(self, n: int) -> int:
        """How many integers the score line must hold: one per response, or one index for judge."""
        return 1 if self.kind == "judge" else n

    def score_line(self, n: int) -> ScoreLine:
        """The score line a judgment of n responses must end with."""
        lo, hi = self.score_range(n)
        return ScoreLine(self.box_count(n), lo, hi, self.scores_label)

    def principles_stop(self) -> tuple[str, ...]:
        """Where a principles-only generation must stop: at the critique, the scores, or a response
        block the model starts to invent (the template's own block header, before its first field)."""
        block_head = self.response_block.split("{", 1)[0].strip()
        return tuple(s for s in (self.critique_label, self.scores_label, BOX, block_head) if s)

    def check_count(self, rec: Record) -> None:
        n = len(rec.responses)
        if not self.min_responses <= n <= self.max_responses:
            want = (
                f"exactly {self.min_responses}" if self.min_responses == self.max_responses
                else f"{self.min_responses} to {self.max_responses}"
            )
            noun = "response" if self.max_responses == 1 else "responses"
            raise InputError(f'field "responses": template "{self.name}" takes {want} {noun}, the record has {n}', rec.source, rec.line)


def _template_from_dict(data: dict, path: str) -> Template:
    def need(key: str, typ: type):
        if key not in data:
            raise InputError(f'missing key "{key}"', path)
        val = data[key]
        if not isinstance(val, typ) or isinstance(val, bool):
            raise InputError(f'key "{key}": expected {typ.__name__}, got {type(val).__name__}', path)
        return val

    def opt_int(key: str, default: int) -> int:
        val = data.get(key, default)
        if not isinstance(val, int) or isinstance(val, bool):
            raise InputError(f'key "{key}": expected an integer, got {val!r}', path)
        return val

    kind = data.get("kind", "pointwise")
    if kind not in KINDS:
        raise InputError(f'key "kind": expected one of {", ".join(KINDS)}, got {kind!r}', path)
    user = need("user", str)
    for ph in ("{context}", "{responses}"):
        if ph not in user:
            raise InputError(f'key "user": the template must contain the placeholder {ph}', path)
    t = Template(
        name=str(data.get("name") or Path(path).stem),
        description=str(data.get("description", "")),
        kind=kind,
        score_min=opt_int("score_min", 1),
        score_max=opt_int("score_max", 10),
        min_responses=opt_int("min_responses", 1),
        max_responses=opt_int("max_responses", 16),
        user=user,
        response_block=str(data.get("response_block", "[The Begin of Response {i}]\n{response}\n[The End of Response {i}]")),
        principles_label=str(data.get("principles_label", "Specific Criteria:")),
        critique_label=str(data.get("critique_label", "Analysis:")),
        scores_label=str(data.get("scores_label", "Scores:")),
        hint=str(data.get("hint", "The best response is: Response {best}")),
        path=path,
        without_principles=_edits(data.get("without_principles", []), user, path),
        meta_user=str(data.get("meta_user") or META_USER),
    )
    if t.score_min > t.score_max:
        raise InputError(f"score_min {t.score_min} is above score_max {t.score_max}", path)
    return t


def _edits(raw: object, user: str, path: str) -> tuple[tuple[str, str], ...]:
    """`without_principles`: a list of {find, replace}; each `find` must occur in `user`, so a template edit
    that breaks the variant fails on load instead of silently asking for principles anyway."""
    if not isinstance(raw, list):
        raise InputError('key "without_principles": expected a list of {find, replace} mappings', path)
    edits = []
    for i, item in enumerate(raw, start=1):
        if not (isinstance(item, dict) and isinstance(item.get("find"), str) and isinstance(item.get("replace", ""), str) and item["find"]):
            raise InputError(f'key "without_principles", item {i}: expected a mapping with a non-empty "find" text and a "replace" text', path)
        if item["find"] not in user:
            raise InputError(f'key "without_principles", item {i}: the text to find does not occur in "user": {item["find"][:60]!r}', path)
        edits.append((item["find"], item.get("replace", "")))
    return tuple(edits)


@lru_cache(maxsize=32)
def load_template(name_or_path: str = "pointwise") -> Template:
    """A shipped template by name (`pointwise`, `single`, `judge`) or a user's YAML file by path."""
    p = Path(name_or_path)
    if not (p.suffix in (".yaml", ".yml") or p.exists()):
        p = prompts_dir() / f"{name_or_path}.yaml"
        if not p.exists():
            raise InputError(f"unknown template {name_or_path!r}: expected one of {', '.join(builtin_templates())} or a path to a .yaml file")
    data = read_yaml_mapping(p, "template")
    if not data:
        raise InputError("expected a YAML mapping with at least a \"user\" key", str(p))
    return _template_from_dict(data, str(p))


@dataclass(frozen=True)
class Prompt:
    """What the engine gets for one sample: chat messages, an optional assistant pre-fill, and the order shown."""

    messages: tuple[dict, ...]
    assistant_prefix: str
    order: tuple[int, ...]  # order[j] = index (in the record) of the response shown at position j


def render_context(rec: Record) -> str:
    """A single query as is; a conversation as 'User:/Assistant:' turns ending with the query."""
    if len(rec.context) == 1:
        return rec.context[0].content
    return "\n".join(f"{t.role.capitalize()}: {t.content}" for t in rec.context)


def render(
    template: Template,
    rec: Record,
    order: Sequence[int] | None = None,
    *,
    principles: str | None = None,
    hint_best: int | None = None,
    mode: str = "self",
) -> Prompt:
    """Render `rec` with its responses shown in `order`.

    principles: fixed principles pre-filled as the start of the model's answer, so it goes on with the
      analysis and the scores (the model does not write its own): principles mode "given".
    mode: "self" (the model states its principles, the default; its answer is pre-filled with the principles
      label) or "none" (the ablation: the instruction asks for no principles and the answer is pre-filled
      with the critique label). "given" needs `principles`.
    hint_best: 0-based index (in the record) of the labelled best response; appends the paper's hint for
      hinted rejective sampling. The position is translated to the shown order.
    """
    if mode not in MODES:
        raise ValueError(f"principles mode {mode!r}: expected one of {MODES}")
    if mode == "given" and principles is None:
        raise ValueError('principles mode "given" needs the principles text')
    if mode == "none" and principles is not None:
        raise ValueError('principles mode "none" takes no principles')
    n = len(rec.responses)
    order = tuple(range(n)) if order is None else tuple(order)
    if sorted(order) != list(range(n)):
        raise ValueError(f"order {order} is not a permutation of {n} responses")
    blocks = [_fill(template.response_block, {"i": str(j + 1), "response": rec.responses[k]}) for j, k in enumerate(order)]
    example = ", ".join(["x"] * template.box_count(n))
    user = _fill(template.user_text(mode), {"context": render_context(rec), "responses": "\n".join(blocks), "n": str(n), "example": example})
    if hint_best is not None:
        shown = order.index(hint_best) + 1 if template.kind != "single" else hint_best
        user += "\n" + _fill(template.hint, {"best": str(shown)})
    # What the model's answer is pre-filled with, per mode: it starts on the section it is to write, so
    # even a small model states its principles (self), goes on from given ones (given), or analyses (none).
    if principles is not None:
        prefix = f"{template.principles_label} {principles.strip()}\n{template.critique_label}"
    elif mode == "none":
        prefix = template.critique_label
    else:
        prefix = template.principles_label
    return Prompt(messages=({"role": "user", "content": user},), assistant_prefix=prefix, order=order)


def render_meta(template: Template, rec: Record, order: Sequence[int], trajectory: str) -> Prompt:
    """The meta RM's input for one sample: its instruction with the responses in the order that sample
    saw them, and the sample's whole text (principles, critique, score line) as the assistant's answer."""
    order = tuple(order)
    if sorted(order) != list(range(len(rec.responses))):
        raise ValueError(f"order {order} is not a permutation of {len(rec.responses)} responses")
    blocks = [_fill(template.response_block, {"i": str(j + 1), "response": rec.responses[k]}) for j, k in enumerate(order)]
    user = _fill(template.meta_user, {"context": render_context(rec), "responses": "\n".join(blocks), "n": str(len(rec.responses))})
    return Prompt(messages=({"role": "user", "content": user},), assistant_prefix=trajectory, order=order)
