"""Online help: the keyword index grouped by topic, per-keyword pages and help topics.

``HELP`` lists keywords by topic; ``HELP <keyword>`` (any accepted abbreviation) prints the
keyword's syntax line, summary and ``help/<name>.txt``; ``HELP <topic>`` prints
``help/topics/<topic>.txt`` (e.g. ``HELP CONVENTIONS``).
"""

from __future__ import annotations

from mosflm_py.errors import KeywordError
from mosflm_py.registry import KeywordSpec, Registry, match_name
from mosflm_py.resources import help_dir, topics_dir

TOPICS: dict[str, str] = {
    "images": "Images, files and names",
    "detector": "Detector and experimental geometry",
    "beam": "X-ray beam",
    "crystal": "Crystal model",
    "spotfinding": "Spot finding",
    "indexing": "Autoindexing",
    "refinement": "Positional refinement",
    "postref": "Post-refinement",
    "integration": "Integration (PROCESS, PROFILE, BACKGROUND, REJECTION)",
    "strategy": "Strategy and overlap testing",
    "gui": "Display, iMosflm and miscellaneous",
    "control": "Session control",
}


def help_file(spec: KeywordSpec):
    """Path of the help text of *spec* (``help/<name>.txt``, lower case)."""
    return help_dir() / f"{spec.name.lower()}.txt"


def keyword_index(registry: Registry) -> list[str]:
    """Lines of the keyword list grouped by topic (HELP with no argument)."""
    lines = [" Keywords (case-insensitive; the first 4 characters are enough).",
             " HELP <keyword> gives syntax, defaults and meaning;"
             " HELP CONVENTIONS describes frames and units.",
             ""]
    by_topic: dict[str, list[KeywordSpec]] = {}
    for spec in registry:
        by_topic.setdefault(spec.topic, []).append(spec)
    for topic in [*TOPICS, *sorted(set(by_topic) - set(TOPICS))]:
        specs = sorted(by_topic.get(topic, []), key=lambda s: s.name)
        if not specs:
            continue
        lines.append(f" {TOPICS.get(topic, topic.capitalize())}:")
        for s in specs:
            syn = f" ({', '.join(s.synonyms)})" if s.synonyms else ""
            lines.append(f"   {s.name + syn:<28} {s.summary}")
        lines.append("")
    topics = sorted(p.stem.upper() for p in topics_dir().glob("*.txt"))
    if topics:
        lines.append(" Help topics: " + ", ".join(topics))
    return lines


def keyword_page(spec: KeywordSpec) -> list[str]:
    """Help page of one keyword: syntax, summary, kind and the help file text."""
    path = help_file(spec)
    if path.is_file():
        lines = [" " + t if t else "" for t in path.read_text(encoding="utf-8").splitlines()]
    else:
        lines = [f" {spec.syntax}", "", f" {spec.summary}"]
    if spec.synonyms:
        lines.append(f" Also accepted as: {', '.join(spec.synonyms)}")
    if not spec.implemented:
        lines.append(f" {spec.name} is not implemented yet in mosflm-py: it is accepted, and GO "
                     "answers that it is not implemented.")
    return lines + allowed_values(spec)


def allowed_values(spec: KeywordSpec) -> list[str]:
    """The declared ranges of the keyword's numbers (``keywords/*.toml``), as the parser checks
    them; infinities and NaN are never accepted and whole numbers fit a 32-bit INTEGER."""
    rows: list[str] = []

    def add(prefix: str, forms) -> None:
        for form in forms:
            for a in form:
                if a.literal or a.type not in ("int", "float"):
                    continue
                kind = "whole number" if a.type == "int" else "number"
                unit = f" {a.unit}" if a.unit else ""
                order = (f", greater than <{a.greater_than}>" if a.greater_than else
                         f", at least <{a.not_less_than}>" if a.not_less_than else "")
                row = f"   {prefix}<{a.name}>: a {kind}{a.range_text()}{unit}{order}"
                if row not in rows:
                    rows.append(row)

    def walk(prefix: str, subs) -> None:
        for sub in subs.values():
            add(f"{prefix}{sub.name} ", sub.forms)
            walk(f"{prefix}{sub.name} ", sub.subkeywords)

    add("", spec.forms)
    walk("", spec.subkeywords)
    if not rows:
        return []
    return ["", " Allowed values (checked when the line is read):", *rows]


def help_lines(registry: Registry, word: str | None) -> list[str]:
    """What HELP [word] prints.

    Raises
    ------
    KeywordError
        When *word* is neither a keyword nor a help topic.
    """
    if not word:
        return keyword_index(registry)
    try:
        spec = registry.lookup(word)
    except KeywordError:
        topics = {p.stem.upper(): p for p in topics_dir().glob("*.txt")}
        try:
            _, path = match_name(word, topics, "help topic")
        except LookupError:
            raise KeywordError(f"no help for {word}: it is not a keyword or a help topic. "
                               "Type HELP for the list.") from None
        return [" " + t if t else "" for t in path.read_text(encoding="utf-8").splitlines()]
    return keyword_page(spec)
