"""Write the instruction-following constraints task: `constraints_train.jsonl` and `constraints_heldout.jsonl`.

    python examples/make_constraints.py                 # the committed files (seed 0) into examples/
    python examples/make_constraints.py --out DIR       # the same bytes anywhere else (the test does this)

Why this task (issue 17): the labels must be checkable and the skill within a small judge's reach. In the
spirit of IFEval, each prompt is an everyday question plus one verifiable constraint ("answer in all
lowercase", "in fewer than N words", "include the word W", "end with the phrase P", "answer as a JSON
object", ...). Every response is a fluent, on-topic answer to the question (`constraints_topics.py`); the
labelled best one satisfies the constraint and the others violate it, so the judge has to check a property
of the text, not guess at content. Many violations are minimal pairs (the same answer with the case, the
ending or the format changed).

The checker of each constraint kind is the ground truth: the generator refuses to write a record whose
best response fails its checker or whose other responses pass it. Train and held-out sets share neither
questions nor constraint wordings (nor the words, phrases and start words the constraints name), so a
held-out gain means the judge learned to check, not to remember. Records have 2, 3 or 4 responses; the
best one's position is drawn per record. Every record keeps its constraint (`kind`, `arg`, `wording`) so
anyone can re-check a label.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from constraints_topics import QUESTIONS  # noqa: E402

HERE = Path(__file__).resolve().parent
FILES = {"train": "constraints_train.jsonl", "heldout": "constraints_heldout.jsonl"}
COUNTS = {"train": 360, "heldout": 240}
HELDOUT_SHARE = 0.4  # of the questions

# -- checkers: the ground truth of every label ---------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


def check_lowercase(text: str, _arg) -> bool:
    return any(c.isalpha() for c in text) and not any(c.isupper() for c in text)


def check_uppercase(text: str, _arg) -> bool:
    return any(c.isalpha() for c in text) and not any(c.islower() for c in text)


def check_max_words(text: str, limit: int) -> bool:
    """Fewer than `limit` words (whitespace-separated, as IFEval counts roughly)."""
    return len(_words(text)) < limit


def check_include_word(text: str, word: str) -> bool:
    return re.search(rf"\b{re.escape(word)}\b", text, re.IGNORECASE) is not None


def check_end_phrase(text: str, phrase: str) -> bool:
    return text.rstrip().endswith(phrase)


def check_json_object(text: str, _arg) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def check_start_word(text: str, word: str) -> bool:
    m = re.match(r"\s*([A-Za-z]+)", text)
    return m is not None and m.group(1).lower() == word.lower()


def check_quoted(text: str, _arg) -> bool:
    t = text.strip()
    return len(t) > 2 and t[0] == '"' and t[-1] == '"'


def check_bullets(text: str, n: int) -> bool:
    """Exactly `n` markdown bullet lines ("- " or "* "), as IFEval's detectable-format check counts them."""
    return sum(1 for line in text.splitlines() if re.match(r"\s*[-*]\s", line)) == n


CHECKERS: dict[str, Callable[[str, object], bool]] = {
    "lowercase": check_lowercase, "uppercase": check_uppercase, "max_words": check_max_words,
    "include_word": check_include_word, "end_phrase": check_end_phrase, "json_object": check_json_object,
    "start_word": check_start_word, "quoted": check_quoted, "bullets": check_bullets,
}
KINDS = tuple(CHECKERS)

# -- wordings (disjoint between the splits) and the values they name -------------------------------------

WORDINGS: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {
        "lowercase": ("Write your whole answer in lowercase letters only.", "Answer in all lowercase, with no capital letters at all.",
                      "Do not use any capital letters in your reply."),
        "uppercase": ("Write your entire answer in capital letters.", "Answer in all uppercase letters.",
                      "Every letter of your reply must be a capital letter."),
        "max_words": ("Answer in fewer than {arg} words.", "Keep your reply under {arg} words.", "Use fewer than {arg} words in total."),
        "include_word": ('Include the word "{arg}" in your answer.', 'Make sure your reply uses the word "{arg}".'),
        "end_phrase": ('End your answer with the exact phrase "{arg}"', 'Finish your reply with the words "{arg}"'),
        "json_object": ("Answer as a JSON object.", "Format your whole reply as a JSON object, nothing else."),
        "start_word": ('Begin your answer with the word "{arg}".', 'Start your reply with "{arg}".'),
        "quoted": ("Wrap your entire answer in double quotation marks.", "Put your whole reply inside double quotes."),
        "bullets": ('Answer with exactly {arg} bullet points, each starting with "- ".', "Use exactly {arg} markdown bullet points."),
    },
    "heldout": {
        "lowercase": ("Your entire response should be in English and in all lowercase letters.", "Respond using only lowercase letters."),
        "uppercase": ("Your whole response must be in English, and in all capital letters.", "Use only uppercase letters in your reply."),
        "max_words": ("Your response should contain less than {arg} words.", "Respond with a reply shorter than {arg} words."),
        "include_word": ('Your response must contain the keyword "{arg}".', 'Be sure to mention the word "{arg}" somewhere in the answer.'),
        "end_phrase": ('Finish your response with this exact phrase: "{arg}" No other words should follow it.',
                       'The last words of your reply must be "{arg}"'),
        "json_object": ("Entire output should be wrapped in JSON format.", "Give your reply as a valid JSON object."),
        "start_word": ('The very first word of your response must be "{arg}".', 'Open your answer with the word "{arg}".'),
        "quoted": ("Enclose your full response in double quotation marks.", "Your entire answer must be surrounded by double quotes."),
        "bullets": ("Your answer must contain exactly {arg} bullet points in markdown format.", "Give precisely {arg} points as a markdown list."),
    },
}
PHRASES = {
    "train": ("Hope this helps.", "Let me know if you have more questions.", "That is my answer.", "Thanks for asking."),
    "heldout": ("Is there anything else I can help with?", "I hope that answers it.", "Have a nice day."),
}
START_WORDS = {"train": ("Well", "Sure", "Basically", "Honestly", "Actually"), "heldout": ("Certainly", "Simply", "Indeed", "Okay")}
JSON_KEYS = {"train": ("answer", "response"), "heldout": ("reply", "text")}
STOP = set("""about above after again against along among around because before being below between both cannot could during
each either enough every first from further having into itself little longer might more most much never other others
ought over really rather same should since some still such than that their them then there these they thing things
this those through under until very what when where which while whose with within without would your yours""".split())

# -- building one record's responses ---------------------------------------------------------------------


def sentences(text: str) -> list[str]:
    return re.split(r"(?<=[.!?])\s+", text.strip())


NAMES = {"Einstein", "February", "Earth", "Hawaii", "LED", "CV"}


def decap(text: str) -> str:
    """Lower the first letter unless the first word is a name: 'Well, the moon ...', 'Well, Einstein ...'."""
    return text if text.split(" ", 1)[0].strip(",") in NAMES else text[:1].lower() + text[1:]


def _unique_words(text: str, others: list[str]) -> list[str]:
    other = {w.lower() for o in others for w in re.findall(r"[A-Za-z]+", o)}
    found = []
    for w in re.findall(r"[A-Za-z]+", text):
        lw = w.lower()
        if len(lw) >= 5 and lw not in STOP and lw not in other and lw not in found:
            found.append(lw)
    return found


def build(kind: str, answers: tuple[str, ...], split: str, rng: random.Random):
    """(arg, best, violating candidates) for one question and constraint kind, or None when the question
    cannot carry that kind (e.g. no word unique to one answer)."""
    a = list(answers)
    rng.shuffle(a)
    v, w, x = a
    s = sentences(v)
    if kind == "lowercase":
        cands = [v, w, v.upper()] + ([s[0].lower() + " " + " ".join(s[1:])] if len(s) > 1 else [x])
        return None, v.lower(), cands
    if kind == "uppercase":
        cands = [v, w, v.lower()] + ([s[0].upper() + " " + " ".join(s[1:])] if len(s) > 1 else [x])
        return None, v.upper(), cands
    if kind == "max_words":
        best = rng.choice([v, s[0]])
        limit = (len(_words(best)) // 5 + 1) * 5 + rng.choice([0, 5])
        pool = [w, x, v + " " + w, w + " " + x, x + " " + v] + ([v] if best != v else [])
        return limit, best, [c for c in pool if len(_words(c)) >= limit]
    if kind == "include_word":
        for best, others in ((v, [w, x]), (w, [v, x]), (x, [v, w])):
            words = _unique_words(best, others)
            if words:
                return rng.choice(words), best, others + [others[0] + " " + others[1]]
        return None
    if kind == "end_phrase":
        phrase, other = rng.sample(PHRASES[split], 2)
        return phrase, v + " " + phrase, [v, v + " " + other, phrase + " " + v, w + " " + other]
    if kind == "json_object":
        key = rng.choice(JSON_KEYS[split])
        good = json.dumps({key: v})
        return None, good, [v, "{'%s': '%s'}" % (key, v), good[:-1], f"{key}: {v}"]
    if kind == "start_word":
        word, other = rng.sample(START_WORDS[split], 2)
        cands = [v, f"{other}, {decap(v)}", w] + ([f"{s[0]} {word}, {decap(' '.join(s[1:]))}"] if len(s) > 1 else [f"{other}, {decap(w)}"])
        return word, f"{word}, {decap(v)}", cands
    if kind == "quoted":
        cands = [v, f"'{v}'", f'"{v}'] + ([f'"{s[0]}" ' + " ".join(s[1:])] if len(s) > 1 else [f'"{w}'])
        return None, f'"{v}"', cands
    if kind == "bullets":
        pool = [t for ans in (v, w, x) for t in sentences(ans)]
        n = rng.randint(2, min(4, len(pool) - 1))

        def bullets(k: int) -> str:
            return "\n".join("- " + t for t in pool[:k])
        numbered = "\n".join(f"{i + 1}. {t}" for i, t in enumerate(pool[:n]))
        return n, bullets(n), [bullets(n - 1), bullets(n + 1), " ".join(pool[:n]), numbered]
    raise ValueError(kind)


def make_record(split: str, index: int, kind: str, n: int, question: str, answers: tuple[str, ...], rng: random.Random, best_at: int) -> dict | None:
    built = build(kind, answers, split, rng)
    if built is None:
        return None
    arg, best, cands = built
    check = CHECKERS[kind]
    if not check(best, arg):
        raise AssertionError(f"{split} {kind}: the best response fails its own checker: {best!r}")
    seen = {best}
    others = []
    for c in cands:
        if c in seen:
            continue
        if check(c, arg):
            raise AssertionError(f"{split} {kind}: a violating response passes the checker: {c!r}")
        seen.add(c)
        others.append(c)
    if len(others) < n - 1:
        return None
    responses = rng.sample(others, n - 1)
    responses.insert(best_at, best)
    wording = rng.choice(WORDINGS[split][kind])
    return {
        "id": f"ifc-{split}-{index:04d}",
        "prompt": f"{question} {wording.format(arg=arg)}",
        "responses": responses,
        "preferred": responses.index(best),
        "subset": kind,
        "constraint": {"kind": kind, "arg": arg, "wording": wording},
    }


def split_questions(seed: int) -> dict[str, list[tuple[str, tuple[str, str, str]]]]:
    qs = list(QUESTIONS)
    random.Random(seed).shuffle(qs)
    cut = round(len(qs) * HELDOUT_SHARE)
    return {"heldout": qs[:cut], "train": qs[cut:]}


def make_split(split: str, questions: list, count: int, seed: int) -> list[dict]:
    """`count` records: kinds in turn, 2/3/4 responses in turn, a question drawn for each; a prompt is never
    repeated within a split. The best response's position goes round each record size's positions, so
    no position is more often right than another (a judge cannot score well by preferring one)."""
    rng = random.Random(f"{seed}-{split}")
    out, prompts = [], set()
    placed = {2: 0, 3: 0, 4: 0}
    i = 0
    while len(out) < count:
        kind, n = KINDS[i % len(KINDS)], (2, 3, 4)[(i // len(KINDS)) % 3]
        i += 1
        question, answers = rng.choice(questions)
        rec = make_record(split, len(out), kind, n, question, answers, rng, placed[n] % n)
        if rec is None or rec["prompt"] in prompts:
            continue
        placed[n] += 1
        prompts.add(rec["prompt"])
        out.append(rec)
        if i > 50 * count:
            raise RuntimeError(f"{split}: could not draw {count} distinct records")
    return out


def generate(seed: int = 0) -> dict[str, list[dict]]:
    qs = split_questions(seed)
    return {split: make_split(split, qs[split], COUNTS[split], seed) for split in ("train", "heldout")}


def write(out: Path, seed: int = 0) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, rows in generate(seed).items():
        paths[split] = out / FILES[split]
        paths[split].write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    for split, path in write(args.out, args.seed).items():
        print(f"{split}: {sum(1 for _ in path.open(encoding='utf-8'))} records -> {path}")


if __name__ == "__main__":
    main()
