"""Explicit multi-step retrieval trajectories (think, search, read; at most four searches; then answer) for the
LatentRAG loop, templated from the human reasoning paths of the shared public sets: there is no teacher agent.

Only questions that are never evaluated on are used: StrategyQA and HotpotQA-evidence questions of the ``train``
split (`laser_rag_datasets.shared.split_of`), none of HotpotQA dev_100's questions, and MuSiQue's *unanswerable*
items (its answerable half is the evaluation set of `laser_rag_benchmarks.qa`), leaving out the few that share a
single-hop sub-question with an answerable item.

- StrategyQA: a step per decomposition step that asks for a fact (not the operation steps that only combine
  ``#k`` answers), with that step's golden Wikipedia sentences as its gold (see `strategyqa_trajectories`).
- HotpotQA: two steps (bridge: the question, then the bridge entity) or one step per compared entity (comparison),
  gold = the evidence sentences of each hop (see `hotpotqa_trajectories`).
- MuSiQue: a step per single-hop sub-question, ``#k`` replaced by the earlier sub-answer (see `musique_trajectories`).

`attach_documents` runs every step's subquery through a retriever, keeps what it found and drops the trajectories
in which no step found its gold: the stand-in for keeping only a teacher's correct trajectories.

Example::

    trajectories = build_trajectories(per_source=100)
    kept = attach_documents(trajectories, search, k=3)     # search(subqueries) -> [[(title, text), ...], ...]
    json.dump([t.to_dict() for t in kept], file)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from laser_rag.corpus import Document
from laser_rag_datasets import shared
from laser_rag_datasets.shared import read_json_lines, shared_file
from laser_rag_training.data import mentions_answer  # the answer-mention test that splits HotpotQA's hops there too

__all__ = [
    "TRAJECTORY_SOURCES",
    "Trajectory",
    "TrajectoryStep",
    "attach_documents",
    "build_trajectories",
    "hotpotqa_trajectories",
    "musique_trajectories",
    "strategyqa_trajectories",
    "trajectory_corpus",
]

#: The sources `build_trajectories` knows.
TRAJECTORY_SOURCES = ("strategyqa", "hotpotqa", "musique")
#: The most retrievals one trajectory makes (LatentRAG's budget); longer reasoning paths are left out.
MAX_STEPS = 4
#: About the longest a step's thought gets, in words.
THOUGHT_WORDS = 40

_MUSIQUE_FILE = "musique/musique_full_v1.0_train_first100.jsonl"


@dataclass
class TrajectoryStep:
    """One retrieval: the thought before it, the subquery it searches, the gold evidence it should find."""

    #: The reasoning text before this retrieval (short: at most about `THOUGHT_WORDS` words).
    thought: str
    #: The search query of this retrieval.
    subquery: str
    #: Texts of the gold evidence this hop should find (sentences or paragraphs); may be empty.
    gold: list[str]
    #: The retrieved top-k texts and their titles (filled by `attach_documents`).
    documents: list[str] = field(default_factory=list)
    document_titles: list[str] = field(default_factory=list)


@dataclass
class Trajectory:
    """A question's whole path: 1..`MAX_STEPS` retrieval steps, the thought before answering, the answer."""

    qid: str
    source: str
    question: str
    answer: str
    steps: list[TrajectoryStep]
    final_thought: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable data (`from_dict` reads it back)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trajectory:
        fields = dict(data)
        fields["steps"] = [TrajectoryStep(**step) for step in data["steps"]]
        return cls(**fields)


# ---------------------------------------------------------------------------------------------------------------
# Text helpers

_STOPWORDS = frozenset("""
a an the of in on at to for by with from into as and or but than then that this these those it its their there
is are was were be been being am has have had do does did can could would will shall should may might must
what which who whom whose when where why how many much also only both either not any all some each one
""".split())
_REFERENCE = re.compile(r"#\s*(\d+)")


def _words(text: str) -> list[str]:
    return text.split()


def _key(token: str) -> str:
    """A token compared across texts: lower-case, surrounding punctuation, a possessive 's and a plural s dropped."""
    token = token.lower().strip(".,;:!?\"'()[]{}“”‘’")
    token = token[:-2] if token.endswith(("'s", "’s")) else token
    return token[:-1] if len(token) > 4 and token.endswith("s") and not token.endswith("ss") else token


def _content(text: str) -> list[str]:
    return [k for k in map(_key, _words(text)) if k and k not in _STOPWORDS]


def _tidy(text: str) -> str:
    text = re.sub(r"\(\s+", "(", " ".join(text.split()))
    return re.sub(r"\s+([?.,;:!)]|'s\b)", r"\1", text)


def _clip(text: str, words: int = THOUGHT_WORDS) -> str:
    parts = _words(text)
    return " ".join(parts) if len(parts) <= words else " ".join(parts[:words]).rstrip(".,;:") + " ..."


def _sentence(text: str) -> str:
    text = _tidy(text)
    return text if not text or text[-1] in ".?!" else text + "."


_WH = frozenset({"what", "which", "who", "whom", "whose", "when", "where", "why", "how"})


def _to_find(step: str) -> str:
    """What follows "I need to find out": a wh-question as a clause ("what ingredients are ..."), another
    question after a colon (": is celery ...?"), "about X" as it is."""
    step = step.strip()
    words = [w.lower() for w in _words(step)[:2]]
    if words and (words[0] in _WH | {"about"} or len(words) > 1 and words[1] in _WH and words[0] in _STOPWORDS):
        return " " + step[0].lower() + step[1:].rstrip("?. ") + "."
    return ": " + (step if step.endswith(("?", ".")) else step + ".")


def _plan(step: str) -> str:
    return _clip(f"I need to find out{_to_find(step)}")


def _next(previous: str, step: str) -> str:
    """``previous`` (a fact just read), then the plan for ``step``; the fact is clipped so that the whole thought
    stays within about `THOUGHT_WORDS` words."""
    plan = _clip(f"Next, I need to find out{_to_find(step)}", THOUGHT_WORDS * 3 // 4)
    if not previous.strip():
        return plan
    budget = max(8, THOUGHT_WORDS - len(_words(plan)) - 1)  # the clipped fact may end with " ..."
    return f"{_clip(_sentence(previous), budget)} {plan}"


def _conclusion(answer: str) -> str:
    return f"So the answer is {answer}."


def _question_key(question: str) -> str:
    return " ".join(re.findall(r"\w+", question.lower()))


# ---------------------------------------------------------------------------------------------------------------
# StrategyQA


#: Words that end a noun phrase inside a fact (verbs, relative pronouns): "three children" of "had three children".
_CLAUSE = frozenset({"is", "are", "was", "were", "be", "been", "has", "have", "had", "do", "does", "did", "can",
                     "could", "would", "will", "which", "that", "who", "whom", "whose", "where", "when", "while",
                     "because", "so", "but", "not"})
_NUMBERS = frozenset("one two three four five six seven eight nine ten eleven twelve twenty hundred thousand million "
                     "billion dozen half".split())


def _is_number(word: str) -> bool:
    return any(ch.isdigit() for ch in word) or _key(word) in _NUMBERS


def _novel_span(fact: str, step: str) -> str:
    """What ``fact`` answers to ``step``, from the words of ``fact`` that ``step`` lacks (cut into phrases at those
    words, verbs and relative pronouns; stop words trimmed from the ends): the first name of two or more words in
    them ("... was the architect of the Eiffel Tower" -> "Eiffel Tower"), else the first number and the word after
    it ("Julius Caesar had three children." for "How many kids did Julius Caesar have?" -> "three children"),
    else the phrase with most content words if it has at most six words; "" otherwise."""
    known = {_key(w) for w in _words(step)}
    words = _words(fact)
    runs: list[list[int]] = [[]]
    for i, word in enumerate(words):
        key = _key(word)
        if key in _CLAUSE or key in known and key not in _STOPWORDS:
            runs.append([])
        else:
            runs[-1].append(i)
        if word.endswith((";", ":", ",")):
            runs.append([])
    phrases = []
    for run in runs:
        while run and (_key(words[run[0]]) in _STOPWORDS or not _key(words[run[0]])):
            run = run[1:]
        while run and (_key(words[run[-1]]) in _STOPWORDS or not _key(words[run[-1]])):
            run = run[:-1]
        if run:
            phrases.append(run)
    for run in phrases:
        names = [name for _, _, name in _names(" ".join(words[i] for i in run)) if len(_words(name)) > 1]
        if names:
            return names[0]
    for run in phrases:
        for i in run:
            if _is_number(words[i]):
                after = words[i + 1] if i + 1 < len(words) and _key(words[i + 1]) not in _STOPWORDS else ""
                return " ".join([words[i], after]).strip(" .,;:\"'")
    best = max(phrases, key=lambda run: len(_content(" ".join(words[i] for i in run))), default=[])
    return " ".join(words[i] for i in best).strip(" .,;:\"'") if 0 < len(best) <= 6 else ""


def _align_facts(steps: Sequence[str], facts: Sequence[str]) -> list[str]:
    """Each step's fact: the fact sharing most content words with it (an unused one first on ties); "" when no
    fact shares a word."""
    used: set[int] = set()
    aligned = []
    for step in steps:
        words = set(_content(_REFERENCE.sub(" ", step)))
        scored = [(len(words & set(_content(fact))), i not in used, -i) for i, fact in enumerate(facts)]
        best = max(scored, default=(0, False, 0))
        if best[0]:
            used.add(-best[2])
            aligned.append(facts[-best[2]])
        else:
            aligned.append("")
    return aligned


def _key_phrase(question: str) -> str:
    """A question as a phrase: its leading question words dropped ("What is the capital of France?" -> "the
    capital of France")."""
    words = _words(question.rstrip("?. "))
    lead = {"what", "which", "who", "whom", "whose", "when", "where", "why", "how", "many", "much", "is", "are",
            "was", "were", "do", "does", "did", "can", "could", "would", "will", "has", "have", "had"}
    while len(words) > 1 and words[0].lower() in lead:
        words = words[1:]
    return " ".join(words)


def _resolve_strategyqa(steps: Sequence[str], facts: Sequence[str]) -> list[str]:
    """The decomposition steps with every ``#k`` replaced: by what step k's fact answers (`_novel_span`), else by
    step k itself as a phrase (`_key_phrase`, itself resolved) when that has at most six words, else by "it"; a
    reference to no earlier step is dropped."""
    resolved: list[str] = []

    def value(match: re.Match) -> str:
        k = int(match.group(1)) - 1
        if not 0 <= k < len(resolved):
            return ""
        phrase = _key_phrase(resolved[k])
        return _novel_span(facts[k], steps[k]) or (phrase if len(_words(phrase)) <= 6 else "it")

    for step in steps:
        resolved.append(_tidy(_REFERENCE.sub(value, step)))
    return resolved


def _is_operation(annotation: list) -> bool:
    """Whether a decomposition step (as the first annotator's evidence marks it) only combines earlier answers."""
    return "operation" in annotation and not any(isinstance(part, list) for part in annotation)


def _strategyqa_raw() -> dict[str, dict]:
    raw = json.loads(shared_file("strategyqa/train_gdsent.json").read_text(encoding="utf-8-sig"))
    return {item["qid"]: item for item in raw}


def strategyqa_trajectories(split: str = "train") -> list[Trajectory]:
    """StrategyQA questions of the train split with at least one golden sentence and 1..4 retrieval steps.

    ``golden_sentence`` is per step: its j-th group holds the sentences of the paragraphs the first annotator gave
    as evidence for the j-th decomposition step that has any (one sentence per paragraph, "" when unresolved). The
    retrieval steps are the decomposition steps that annotator did not mark as a pure operation; each one's gold is
    its group's sentences. Subquery: the step with ``#k`` resolved (`_resolve_strategyqa`: the words step k's fact
    adds, e.g. "three children", else step k as a phrase). Thought: "I need to find out <step>." for the first
    step; then the previous step's fact (the fact sharing most words with it, else its first golden sentence) and
    "Next, I need to find out <step>.". Final thought: the facts, the operation step(s), "So the answer is yes/no.".
    """
    _train_only(split)
    raw = _strategyqa_raw()
    trajectories = []
    for record in shared.strategyqa_records(split):
        if not record["positives"]:
            continue
        item = raw[record["qid"]]
        annotation, groups = item["evidence"][0], iter(item["golden_sentence"])
        gold = [[s.strip() for s in next(groups) if s.strip()] if any(isinstance(p, list) for p in part) else []
                for part in annotation]
        decomposition = [s.strip() for s in item["decomposition"]]
        facts = _align_facts(decomposition, [f.strip() for f in item["facts"] if f.strip()])
        resolved = _resolve_strategyqa(decomposition, facts)
        retrieval = [i for i, part in enumerate(annotation) if not _is_operation(part)]
        if not 1 <= len(retrieval) <= MAX_STEPS:
            continue
        steps, previous = [], None
        for i in retrieval:
            if previous is None:
                thought = _plan(resolved[i])
            else:
                thought = _next(facts[previous] or next(iter(gold[previous]), ""), resolved[i])
            steps.append(TrajectoryStep(thought, resolved[i], gold[i]))
            previous = i
        operations = [resolved[i] for i in range(len(decomposition)) if i not in retrieval]
        final = " ".join([*map(_sentence, item["facts"]), *map(_sentence, operations), _conclusion(_yes_no(item))])
        trajectories.append(Trajectory(record["qid"], "strategyqa", record["question"], _yes_no(item), steps,
                                       _tidy(final)))
    return trajectories


def _yes_no(item: dict) -> str:
    return "yes" if item["answer"] else "no"


def _train_only(split: str) -> None:
    if split != "train":
        raise ValueError(f"trajectories are training data: only split='train' is built, got {split!r}")


# ---------------------------------------------------------------------------------------------------------------
# HotpotQA


#: Lower-case words inside a name, between two capitalised ones ("Sleeping with Sirens", "Tablas de Daimiel").
_NAME_LINKS = frozenset({"of", "the", "de", "du", "da", "la", "le", "von", "van", "der", "del", "y", "for", "with",
                         "&"})
#: Capitalised words that do not name anything (sentence openers, pronouns, question words).
_NOT_NAMES = _STOPWORDS | {"he", "she", "they", "his", "her", "him", "them", "after", "before", "during", "following",
                           "along", "born", "together", "since", "while", "although", "however", "between", "who"}


def _bare(token: str) -> str:
    return token.strip("\"'“”‘’()[]{}?!.,;:")


def _is_named(token: str) -> bool:
    word = _bare(token)
    return bool(word) and (word[0].isupper() or word[0].isdigit())


def _names(text: str) -> list[tuple[int, int, str]]:
    """The runs of capitalised words (and "of", "de", ... between two of them) in ``text``, as (first token, end
    token, the run), pronouns, question words and other openers trimmed from their ends; a comma ends a run."""
    tokens = text.split()
    runs: list[list[int]] = [[]]
    for i, token in enumerate(tokens):
        if token.startswith("("):  # a parenthesis ends a name and is none: "John Doman (born 1945)"
            runs.append([])
            continue
        linked = runs[-1] and _bare(token).lower() in _NAME_LINKS and i + 1 < len(tokens) and _is_named(tokens[i + 1])
        if _is_named(token) or linked:
            runs[-1].append(i)
        elif runs[-1]:
            runs.append([])
        ends = token.endswith((",", ";", ":", "?", "!", '"', "”")) or token.endswith(".") and len(_bare(token)) > 1
        if runs[-1] and ends:
            runs.append([])
    names = []
    for run in runs:
        while run and _bare(tokens[run[0]]).lower() in _NOT_NAMES | _NAME_LINKS:
            run = run[1:]
        while run and _bare(tokens[run[-1]]).lower() in _NOT_NAMES | _NAME_LINKS:
            run = run[:-1]
        if run and any(_bare(tokens[i])[:1].isalpha() for i in run):
            words = [tokens[i].strip("\"“”()[]{}").rstrip(",;:?!") for i in run]
            words[-1] = words[-1].rstrip(".") if len(_bare(words[-1])) > 1 else words[-1]
            names.append((run[0], run[-1] + 1, " ".join(words)))
    return names


def _leading_entity(sentence: str) -> str:
    """The title-like name a Wikipedia sentence opens with, within its first three words ("John Doman (born 1945)
    is ..." -> "John Doman"); "" when it opens with something else ("He was ...")."""
    names = _names(sentence)
    return names[0][2] if names and names[0][0] <= 2 else ""


def _question_words(question: str) -> list[str]:
    return [w.strip("?!.,;:\"“”()") for w in _words(question) if w.strip("?!.,;:\"“”()")]


def _shared_entity(question: str, sentence: str) -> str:
    """The longest run of the question's words that ``sentence`` contains and that starts and ends with a
    capitalised word or number (the entity the sentence is about, as the question names it); "" when none."""
    words = _question_words(question)
    best = ""
    for start in range(len(words)):
        for end in range(len(words), start, -1):
            if end - start <= len(_words(best)):
                break
            span = words[start:end]
            if all(_is_named(w) and w.lower() not in _NOT_NAMES for w in (span[0], span[-1])) and re.search(
                    rf"(?<!\w){re.escape(' '.join(span))}(?!\w)", sentence):
                best = " ".join(span)
                break
    return best


def _compared_entities(question: str) -> list[str]:
    """The two names a comparison question joins with "or"/"and"/"vs" (the last "or" first), else its first two."""
    tokens = [_bare(t).lower() for t in question.split()]
    names = _names(question)
    for connector in ("or", "versus", "vs", "and"):
        positions = [i for i, t in enumerate(tokens) if t == connector]
        for position in (reversed(positions) if connector == "or" else positions):
            before = [n for n in names if n[1] == position]
            after = [n for n in names if n[0] == position + 1]
            if before and after:
                return [before[0][2], after[0][2]]
    return [name for _, _, name in names[:2]]


def _relation_words(question: str, known: str, limit: int = 6) -> str:
    """The question's content words that ``known`` lacks, in order, at most ``limit``: what is still asked."""
    seen = set(_content(known))
    words = []
    for word in _question_words(question):
        key = _key(word)
        if key and key not in _STOPWORDS and key not in seen:
            seen.add(key)
            words.append(word)
    return " ".join(words[:limit])


def _hotpotqa_types() -> dict[str, str]:
    return {_question_key(row["question"]): row.get("type", "")
            for row in read_json_lines(shared_file("hotpotqa/evidence_train_500.jsonl"))}


def _hotpotqa_dev_questions() -> set[str]:
    return {_question_key(row["question"]) for row in read_json_lines(shared_file("hotpotqa/dev_100.jsonl"))}


def _bridge(question: str, evidence: list[str], answer: str) -> tuple[list[TrajectoryStep], str] | None:
    second = [s for s in evidence if mentions_answer(s, answer)]
    first = [s for s in evidence if s not in second]
    if not first or not second:  # every or no sentence states the answer: the file's order gives the hops
        first, second = evidence[:1], evidence[1:]
    if not second:
        return None
    topic = _shared_entity(question, first[0])
    found = [name for _, _, name in _names(" ".join(first)) if name not in question]  # what the first hop adds
    linking = [name for name in found if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", " ".join(second))]
    bridge = next(iter(linking), "") or _leading_entity(second[0]) or (found[-1] if found else "")
    subquery = _tidy(f"{bridge} {_relation_words(question, ' '.join([*first, bridge]))}") if bridge else question
    steps = [TrajectoryStep(_clip(f"I need to find out about {topic} first." if topic else
                                  "I need to find out what the question refers to first."), question, first),
             TrajectoryStep(_next(first[0], f"about {bridge}" if bridge else "what the question asks of it"), subquery,
                            second)]
    final = " ".join([*(_sentence(_clip(s, 30)) for s in second), _conclusion(answer)])
    return steps, final


def _about(entity: str, sentences: list[str]) -> str:
    """The first of ``sentences`` that shares a word with ``entity`` (else the first): the fact to quote."""
    return next((s for s in sentences if set(_content(s)) & set(_content(entity))), sentences[0])


def _comparison(question: str, evidence: list[str], answer: str) -> tuple[list[TrajectoryStep], str] | None:
    entities = _compared_entities(question)
    if not entities:
        return None
    gold: dict[str, list[str]] = {entity: [] for entity in entities}
    current = entities[0]
    for sentence in evidence:  # to the entity it shares most words with; none: the previous sentence's entity
        words = set(_content(sentence))
        overlaps = [len(words & set(_content(entity))) for entity in entities]
        if max(overlaps) and overlaps[entities.index(current)] < max(overlaps):
            current = entities[overlaps.index(max(overlaps))]
        gold[current].append(sentence)
    entities = [entity for entity in entities if gold[entity]]
    attribute = _relation_words(question, " ".join(n for _, _, n in _names(question)), limit=4)
    steps = []
    for index, entity in enumerate(entities):
        if index == 0:
            thought = _clip(f"I need to compare {' and '.join(entities)}; first, I need to find out about {entity}.")
        else:
            thought = _next(_about(entities[index - 1], gold[entities[index - 1]]), f"about {entity}")
        steps.append(TrajectoryStep(thought, _tidy(f"{entity} {attribute}"), gold[entity]))
    facts = [_sentence(_clip(_about(entity, gold[entity]), 30)) for entity in entities]
    return steps, " ".join([*facts, f"Comparing {' and '.join(entities)}, the answer is {answer}."])


def hotpotqa_trajectories(split: str = "train") -> list[Trajectory]:
    """HotpotQA-evidence questions of the train split (none of dev_100's), by the question type of the raw file.

    Bridge: the evidence sentences that mention the answer are the second hop, the others the first (when all or
    none do, the first sentence is the first hop and the rest the second). Step 0 searches the question itself for
    the first hop ("I need to find out about <the question's name that the first hop contains> first."); step 1
    searches the bridge entity followed by the question's content words that the first hop lacks. The bridge entity
    is the first name that the first hop adds to the question and the second hop repeats (the link between the
    hops), else the name the first answer-bearing sentence opens with, else the last name the first hop adds.
    Comparison: the two names the question joins with "or"/"and" (else its first two names); each evidence
    sentence goes to the name it shares most words with (a sentence sharing none, "He was ...", to the previous
    sentence's); one step per name, searching "<name> <the question's other content words>"; the final thought
    compares. Single-sentence bridges are left out.
    """
    _train_only(split)
    types, held_out = _hotpotqa_types(), _hotpotqa_dev_questions()
    trajectories = []
    for record in shared.hotpotqa_evidence_records(split):
        question = _tidy(record["question"])
        if not record["evidence"] or _question_key(question) in held_out:
            continue
        kind = types.get(_question_key(record["question"]), "bridge")
        built = (_comparison if kind == "comparison" else _bridge)(question, record["evidence"], record["answer"])
        if built is not None:
            steps, final = built
            trajectories.append(Trajectory(record["id"], "hotpotqa", question, record["answer"], steps, _tidy(final)))
    return trajectories


# ---------------------------------------------------------------------------------------------------------------
# MuSiQue


def _musique_rows() -> list[dict]:
    """MuSiQue's unanswerable items, less those sharing a single-hop sub-question (or the question) with an
    answerable one: the answerable items are evaluated on."""
    rows = read_json_lines(shared_file(_MUSIQUE_FILE))
    answerable = [row for row in rows if row.get("answerable", True)]
    hops = {step["id"] for row in answerable for step in row["question_decomposition"]}
    questions = {_question_key(row["question"]) for row in answerable}
    return [row for row in rows if not row.get("answerable", True) and _question_key(row["question"]) not in questions
            and not {step["id"] for step in row["question_decomposition"]} & hops]


def _musique_held_out_texts() -> set[str]:
    rows = read_json_lines(shared_file(_MUSIQUE_FILE))
    return {p["paragraph_text"].strip() for row in rows if row.get("answerable", True)
            for p in row["paragraphs"] if p["is_supporting"]}


def _musique_subquery(question: str, answers: Sequence[str]) -> str:
    """``#k`` replaced by sub-answer k; a knowledge-base step "X >> relation" becomes "X relation"."""
    def value(match: re.Match) -> str:
        k = int(match.group(1)) - 1
        return answers[k] if 0 <= k < len(answers) else ""
    return _tidy(_REFERENCE.sub(value, question).replace(">>", " "))


def musique_trajectories() -> list[Trajectory]:
    """MuSiQue's unanswerable items (`_musique_rows`; never the answerable ones), with no empty sub-answer and at
    least one gold paragraph: a step per ``question_decomposition`` entry, its subquery with ``#k`` replaced by
    sub-answer k. A step's gold: the paragraph its ``paragraph_support_idx`` names, else the supporting paragraphs
    (not named by another step) that mention its sub-answer; the unanswerable items miss a supporting paragraph, so
    some steps have none. Thought: "I need to find out <subquery>." then "<previous subquery>: <its answer>. Next,
    I need to find out <subquery>."; final thought: the last sub-answer statement and the answer."""
    held_out = _musique_held_out_texts()
    trajectories = []
    for row in _musique_rows():
        decomposition = row["question_decomposition"]
        answers = [str(step["answer"]).strip() for step in decomposition]
        if not 1 <= len(decomposition) <= MAX_STEPS or not all(answers):
            continue
        paragraphs = {p["idx"]: p for p in row["paragraphs"] if p["is_supporting"]}
        named = {step["paragraph_support_idx"] for step in decomposition} & set(paragraphs)
        steps, previous = [], ""
        for index, (step, answer) in enumerate(zip(decomposition, answers)):
            subquery = _musique_subquery(step["question"], answers[:index])
            if step["paragraph_support_idx"] in paragraphs:
                found = [paragraphs[step["paragraph_support_idx"]]]
            else:
                found = [p for idx, p in paragraphs.items()
                         if idx not in named and mentions_answer(p["paragraph_text"], answer)]
            gold = [t for t in dict.fromkeys(p["paragraph_text"].strip() for p in found) if t not in held_out]
            steps.append(TrajectoryStep(_next(previous, subquery) if index else _plan(subquery), subquery, gold))
            previous = f"{subquery.rstrip('?. ')}: {answer}."
        if not any(step.gold for step in steps):
            continue
        final = f"{steps[-1].subquery.rstrip('?. ')}: {answers[-1]}. {_conclusion(row['answer'])}"
        trajectories.append(Trajectory(str(row["id"]), "musique", row["question"], str(row["answer"]), steps,
                                       _tidy(final)))
    return trajectories


# ---------------------------------------------------------------------------------------------------------------
# All sources, retrieval, corpora

_BUILDERS: dict[str, Callable[[], list[Trajectory]]] = {
    "strategyqa": strategyqa_trajectories, "hotpotqa": hotpotqa_trajectories, "musique": musique_trajectories}


def build_trajectories(sources: Iterable[str] = TRAJECTORY_SOURCES, *, per_source: int = 0) -> list[Trajectory]:
    """The trajectories of ``sources`` (train data only), the first ``per_source`` of each (0: all)."""
    trajectories = []
    for source in sources:
        if source not in _BUILDERS:
            raise ValueError(f"unknown trajectory source {source!r}; expected one of {', '.join(TRAJECTORY_SOURCES)}")
        part = _BUILDERS[source]()
        trajectories.extend(part[:per_source] if per_source else part)
    return trajectories


def _squash(text: str) -> str:
    return " ".join(text.split())


def _found(gold: Sequence[str], documents: Sequence[str]) -> bool:
    """Whether a document equals or contains one of the gold texts (whitespace normalised)."""
    wanted = [g for g in map(_squash, gold) if g]
    return any(g in doc for doc in map(_squash, documents) for g in wanted)


def attach_documents(trajectories: Sequence[Trajectory], search: Callable[[list[str]], list[list[tuple[str, str]]]],
                     *, k: int = 3) -> list[Trajectory]:
    """Retrieve for every step and keep the trajectories in which some step found its gold.

    ``search`` takes all the steps' subqueries at once and returns one ranked list of (title, text) per subquery;
    the top ``k`` fill each step's ``documents`` and ``document_titles`` (in place). A trajectory is kept when at
    least one of its steps retrieved a document equal to or containing one of that step's gold texts."""
    steps = [step for trajectory in trajectories for step in trajectory.steps]
    results = search([step.subquery for step in steps]) if steps else []
    if len(results) != len(steps):
        raise ValueError(f"search returned {len(results)} result lists for {len(steps)} subqueries")
    for step, hits in zip(steps, results):
        hits = list(hits)[:k]
        step.document_titles = [str(title) for title, _ in hits]
        step.documents = [str(text) for _, text in hits]
    return [t for t in trajectories if any(_found(step.gold, step.documents) for step in t.steps)]


def _without_held_out(source: str, corpus: list[Document]) -> list[Document]:
    """``corpus`` less the documents relevant to a validation/test question only."""
    relevant = {split: {d for docs in shared.shared_dataset(source, split).qrels.values() for d in docs}
                for split in ("train", "validation", "test")}
    held_out = (relevant["validation"] | relevant["test"]) - relevant["train"]
    return [doc for doc in corpus if doc.id not in held_out]


def trajectory_corpus(source: str) -> list[Document]:
    """The documents ``source``'s trajectories retrieve from: StrategyQA's pooled golden sentences
    (``shared_dataset("strategyqa", "train").corpus``), HotpotQA's pooled evidence sentences
    (``shared_dataset("hotpotqa_evidence", "train").corpus``), or the paragraphs of MuSiQue's unanswerable items
    (ids as in ``shared_dataset("musique")``). Documents relevant only to evaluation questions (validation/test
    questions; MuSiQue's answerable items) are left out, so that no trajectory reads a held-out question's gold."""
    if source == "strategyqa":
        return _without_held_out("strategyqa", shared.shared_dataset("strategyqa", "train").corpus)
    if source == "hotpotqa":
        return _without_held_out("hotpotqa_evidence", shared.shared_dataset("hotpotqa_evidence", "train").corpus)
    if source == "musique":
        pool, held_out = shared.DocumentPool("musique:"), _musique_held_out_texts()
        for row in _musique_rows():
            for p in row["paragraphs"]:
                if p["paragraph_text"].strip() not in held_out:
                    pool.add(p["paragraph_text"].strip(), p["title"])
        return pool.corpus
    raise ValueError(f"unknown trajectory source {source!r}; expected one of {', '.join(TRAJECTORY_SOURCES)}")
