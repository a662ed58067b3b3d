"""Schemes: the published, versioned rulebooks, read from YAML and validated before anything runs.

A scheme file is the whole rule: behaviours with their points, validity, notice and legal basis,
grades, lists and measures. Validation errors name the field path and the line of the file, and
the safeguards of `xinyong.rules.safeguards` run on every load, so a scheme that breaks the line we hold
never reaches the ledger.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from xinyong.errors import BadInput, Problem, Refused
from xinyong.rules.identifiers import SubjectKind
from xinyong.rules.periods import Duration, Period
from xinyong.rules.safeguards import screen_behaviours

if TYPE_CHECKING:
    import yaml

Severity = Literal["minor", "general", "serious"]
DataClass = Literal["public", "market", "restricted"]
Polarity = Literal["negative", "positive"]

# NDRC publicity periods: the shortest time after which a record of each severity may be repaired.
REPAIR_AFTER_BY_SEVERITY: dict[str, Period] = {
    "minor": Period(),
    "general": Period(months=3),
    "serious": Period(years=1),
}
DATA_CLASS_RANK: dict[str, int] = {"public": 0, "market": 1, "restricted": 2}

_CODE = r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)*$"
_ID = r"^[a-z0-9][a-z0-9-]*$"
# Working days an office has to decide an objection when a scheme does not say.
DEFAULT_OBJECTION_DEADLINE = 5


class _Strict(BaseModel):
    """Unknown keys are refused: a misspelt `validty` must not silently mean "no expiry"."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Behaviour(_Strict):
    code: str = Field(pattern=_CODE, max_length=64)
    title: str = Field(min_length=1)
    title_zh: str | None = None
    description: str | None = None
    description_zh: str | None = None
    points: int
    polarity: Polarity | None = None
    validity: Duration
    notice: Duration | None = None
    severity: Severity = "general"
    repair_after: Duration | None = None
    cap: int | None = Field(default=None, gt=0)
    data_class: DataClass = "market"
    legal_basis: str
    legal_basis_zh: str | None = None  # every human text may be given in Chinese beside English

    @field_validator("legal_basis")
    @classmethod
    def _basis_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("every behaviour must cite a non-empty legal basis")
        return value.strip()

    @model_validator(mode="after")
    def _polarity_known(self) -> Behaviour:
        inferred: Polarity | None = "negative" if self.points < 0 else "positive" if self.points > 0 else None
        if self.polarity is None and inferred is None:
            raise ValueError("a behaviour with 0 points must say its polarity (negative or positive)")
        if self.polarity is not None and inferred is not None and self.polarity != inferred:
            raise ValueError(f"polarity {self.polarity} contradicts points {self.points}")
        if self.polarity is None:
            object.__setattr__(self, "polarity", inferred)
        return self

    @property
    def negative(self) -> bool:
        return self.polarity == "negative"

    def notice_in(self, scheme: Scheme) -> Period:
        """Its own notice, else the scheme's default for negative behaviours and none for positive."""
        if self.notice is not None:
            return self.notice
        return scheme.default_notice if self.negative else Period()

    @property
    def effective_repair_after(self) -> Period:
        return self.repair_after if self.repair_after is not None else REPAIR_AFTER_BY_SEVERITY[self.severity]


class Grade(_Strict):
    grade: str = Field(min_length=1, max_length=16)
    min: int


class CountRule(_Strict):
    codes: list[str] = Field(min_length=1)
    at_least: int = Field(gt=0)
    within: Duration


class Rule(_Strict):
    """One condition; exactly one key is set. Lists and measures use different subsets of keys."""

    any_of: list[str] | None = None
    count: CountRule | None = None
    grade_in: list[str] | None = None
    on_list: str | None = None
    all: list[Rule] | None = None
    any: list[Rule] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Rule:
        keys = self.keys_set()
        if len(keys) != 1:
            raise ValueError(
                "a rule has exactly one of any_of, count, grade_in, on_list, all, any; "
                f"found {', '.join(keys) or 'none'}"
            )
        return self

    def keys_set(self) -> list[str]:
        return [name for name in type(self).model_fields if getattr(self, name) is not None]

    def walk(self) -> Iterator[Rule]:
        yield self
        for child in (self.all or []) + (self.any or []):
            yield from child.walk()


class ListDef(_Strict):
    id: str = Field(pattern=_ID)
    kind: Literal["black", "red", "watch"]
    title: str = Field(min_length=1)
    title_zh: str | None = None
    rule: Rule


class Measure(_Strict):
    id: str = Field(pattern=_ID)
    kind: Literal["punishment", "reward"]
    title: str = Field(min_length=1)
    title_zh: str | None = None
    implemented_by: str = Field(min_length=1)
    applies_when: Rule
    legal_basis: str
    legal_basis_zh: str | None = None

    @field_validator("legal_basis")
    @classmethod
    def _basis_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("every measure must cite a non-empty legal basis")
        return value.strip()


_LIST_KEYS = {"any_of", "count", "grade_in", "all", "any"}
_MEASURE_KEYS = {"on_list", "grade_in", "all", "any"}


class Scheme(_Strict):
    scheme: str = Field(pattern=_ID, max_length=64)
    version: str = Field(min_length=1, max_length=32)
    title: str = Field(min_length=1)
    title_zh: str | None = None
    description: str | None = None
    description_zh: str | None = None
    jurisdiction: str = Field(min_length=1)
    applies_to: list[SubjectKind] = Field(min_length=1)
    initial: int = 0
    floor: int | None = None
    ceiling: int | None = None
    default_notice: Duration = Field(default_factory=lambda: Period(days=10))
    objection_deadline: int = Field(default=DEFAULT_OBJECTION_DEADLINE, gt=0)
    consent: Literal["required", "not_required"] = "not_required"
    timezone: str = "Asia/Shanghai"
    effective_from: dt.date | None = None
    grades: list[Grade] = Field(default_factory=list)
    behaviours: list[Behaviour] = Field(min_length=1)
    lists: list[ListDef] = Field(default_factory=list)
    measures: list[Measure] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Scheme:
        if info.context and info.context.get("defer_consistency"):
            return self
        problems = consistency_problems(self)
        if problems:
            raise ValueError("; ".join(f"{_path(loc)}: {why}" for loc, why in problems))
        return self

    @cached_property
    def behaviour_by_code(self) -> dict[str, Behaviour]:
        return {b.code: b for b in self.behaviours}

    @cached_property
    def list_by_id(self) -> dict[str, ListDef]:
        return {x.id: x for x in self.lists}

    @cached_property
    def measure_by_id(self) -> dict[str, Measure]:
        return {m.id: m for m in self.measures}

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def is_list(self) -> bool:
        """DESIGN.md's list scheme: no grades and every behaviour worth 0 points, so a score would
        say nothing; its state is on or not on each list."""
        return not self.grades and all(b.points == 0 for b in self.behaviours)

    def grade_rank(self, grade: str | None) -> int:
        """A grade's place in the scheme's order (highest first); no grade ranks last."""
        names = [g.grade for g in self.grades]
        return names.index(grade) if grade in names else len(names)

    def applies_to_kind(self, kind: str) -> bool:
        return kind in self.applies_to

    def list_is_public(self, list_id: str) -> bool:
        """A list is public when every behaviour that can put a subject on it is public-class."""
        item = self.list_by_id[list_id]
        codes = {c for rule in item.rule.walk() for c in (rule.any_of or []) + (rule.count.codes if rule.count else [])}
        return bool(codes) and all(self.behaviour_by_code[c].data_class == "public" for c in codes)

    def grade_for(self, score: int) -> str | None:
        """The first band, highest first, whose min the score reaches."""
        return next((g.grade for g in self.grades if g.min <= score), None)

    def grade_above(self, grade: str | None) -> Grade | None:
        """The next band up from `grade`, or the lowest band when there is no grade yet."""
        names = [g.grade for g in self.grades]
        if grade is None:
            return self.grades[-1] if self.grades else None
        index = names.index(grade)
        return self.grades[index - 1] if index > 0 else None

    def cross_scheme_lists(self) -> set[tuple[str, str]]:
        """Lists of other schemes that this scheme's measures depend on, as (scheme, list)."""
        found: set[tuple[str, str]] = set()
        for measure in self.measures:
            for rule in measure.applies_when.walk():
                if rule.on_list and "/" in rule.on_list:
                    other, list_id = rule.on_list.split("/", 1)
                    found.add((other, list_id))
        return found

    def canonical_json(self) -> str:
        return self.model_dump_json(exclude_none=True)

    def digest(self) -> str:
        """A content hash, so that a published version can be shown to be the one that ran."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


Loc = tuple[int | str, ...]


def how_to_contest(scheme: Scheme | None = None, records: Sequence[int] = ()) -> str:
    """The sentence every check, report and notice carries, so nobody is told of an effect without
    being told how to challenge it: in words a person can act on (the portal or the office, the
    record and the time the office has), never a command; clients get the link beside it."""
    days = scheme.objection_deadline if scheme else DEFAULT_OBJECTION_DEADLINE
    which = f"record {', '.join(str(r) for r in records)}" if records else "the record"
    return (
        f"To contest, the person concerned objects to {which} in the credit portal or at the credit "
        f"office. The record shows as disputed at once and the office must decide within {days} "
        "working days; an objection filed before the record takes effect holds it until the decision."
    )


def consistency_problems(scheme: Scheme) -> list[tuple[Loc, str]]:
    """Checks across fields, each located at the field it concerns so the file's line can be named."""
    problems: list[tuple[Loc, str]] = []
    for field, items, key in (
        ("behaviours", scheme.behaviours, "code"),
        ("grades", scheme.grades, "grade"),
        ("lists", scheme.lists, "id"),
        ("measures", scheme.measures, "id"),
    ):
        seen: set[str] = set()
        for index, item in enumerate(items):
            value = getattr(item, key)
            if value in seen:
                problems.append(((field, index, key), f"{value} appears twice"))
            seen.add(value)
    for index, (upper, lower) in enumerate(zip(scheme.grades, scheme.grades[1:], strict=False)):
        if upper.min <= lower.min:
            problems.append(
                (
                    ("grades", index + 1, "min"),
                    "grades must be listed highest first, with strictly decreasing min",
                )
            )
    if scheme.floor is not None and scheme.ceiling is not None and scheme.floor > scheme.ceiling:
        problems.append((("floor",), "floor is above ceiling"))
    codes = {b.code for b in scheme.behaviours}
    grades = {g.grade for g in scheme.grades}
    list_ids = {x.id for x in scheme.lists}
    for index, item in enumerate(scheme.lists):
        problems += _rule_problems(("lists", index, "rule"), item.rule, _LIST_KEYS, codes, grades, list_ids)
    for index, measure in enumerate(scheme.measures):
        problems += _rule_problems(
            ("measures", index, "applies_when"),
            measure.applies_when,
            _MEASURE_KEYS,
            codes,
            grades,
            list_ids,
        )
    return problems


def _rule_problems(
    loc: Loc, rule: Rule, allowed: set[str], codes: set[str], grades: set[str], lists: set[str]
) -> list[tuple[Loc, str]]:
    key = rule.keys_set()[0]
    problems: list[tuple[Loc, str]] = []
    if key not in allowed:
        problems.append(((*loc, key), f"{key} is not allowed here (use {', '.join(sorted(allowed))})"))
    for code in rule.any_of or []:
        if code not in codes:
            problems.append(((*loc, "any_of"), f"behaviour {code} is not in this scheme's catalogue"))
    for code in rule.count.codes if rule.count else []:
        if code not in codes:
            problems.append(((*loc, "count", "codes"), f"behaviour {code} is not in this scheme's catalogue"))
    for grade in rule.grade_in or []:
        if grade not in grades:
            problems.append(((*loc, "grade_in"), f"grade {grade} is not one of this scheme's grades"))
    if rule.on_list and "/" not in rule.on_list and rule.on_list not in lists:
        problems.append(((*loc, "on_list"), f"list {rule.on_list} is not one of this scheme's lists"))
    for combinator in ("all", "any"):
        for index, child in enumerate(getattr(rule, combinator) or []):
            problems += _rule_problems((*loc, combinator, index), child, allowed, codes, grades, lists)
    return problems


# --- reading YAML with line numbers -------------------------------------------------------------


def _child(node: yaml.Node, key: str) -> yaml.Node | None:
    import yaml

    if isinstance(node, yaml.MappingNode):
        return next((v for k, v in node.value if getattr(k, "value", None) == key), None)
    return None


def _node_line(root: yaml.Node, loc: Sequence[int | str]) -> int | None:
    """The 1-based line of the YAML node at a pydantic error location, as deep as it resolves."""
    import yaml

    node: yaml.Node = root
    line = node.start_mark.line + 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            child = _child(node, part)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line


def _path(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(scheme)"


def _describe(data: Any, loc: Sequence[int | str]) -> str:
    """A behaviour's code or a list's id beside the path, so that messages name the item."""
    node = data
    label = ""
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, dict):
            for key in ("code", "id", "grade"):
                if isinstance(node.get(key), str):
                    label = f" ({node[key]})"
    return label


def parse_scheme(text: str, *, where: str = "scheme") -> Scheme:
    """Validate scheme YAML; every mistake comes back at once with its field path and line."""
    import yaml

    try:
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise BadInput(
            f"{where} is not valid YAML",
            [Problem(f"line {line}" if line else where, str(reason), line=line)],
        ) from None
    if not isinstance(data, dict) or root is None:
        raise BadInput(f"{where} must be a YAML mapping with scheme, version, behaviours, …")
    refusals = screen_behaviours(data.get("behaviours"), lambda index: _node_line(root, ["behaviours", index]))
    version_node = _child(root, "version")
    if isinstance(version_node, yaml.ScalarNode) and not isinstance(data.get("version"), str):
        # `version: 2026.10` is a float to YAML; the author meant the text as written.
        data["version"] = version_node.value

    def located(loc: Sequence[int | str], message: str) -> Problem:
        line = _node_line(root, loc)
        return Problem(
            f"{_path(loc)}{_describe(data, loc)} (line {line})",
            message,
            line=line,
            column=_path(loc),
        )

    problems: list[Problem] = []
    try:
        # Cross-field checks run below, separately, so that each is reported at its own line.
        scheme = Scheme.model_validate(data, context={"defer_consistency": True})
    except ValidationError as exc:
        for error in exc.errors():
            loc = [p for p in error["loc"] if not (isinstance(p, str) and ("[" in p or "(" in p))]
            problems.append(located(loc, re.sub(r"^Value error, ", "", error["msg"])))
    else:
        problems += [located(loc, why) for loc, why in consistency_problems(scheme)]
    if refusals:
        raise Refused(f"{where} is refused: it would score what no scheme may score", refusals + problems)
    if problems:
        raise BadInput(f"{where} is not a valid scheme", problems)
    return scheme


def load_scheme_file(path: Path) -> Scheme:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"cannot read scheme file {path}: {exc.strerror}") from None
    return parse_scheme(text, where=str(path))


@dataclass(frozen=True)
class SchemeVersion:
    """A published version of a scheme: its rules, when the ledger got it, and its digest."""

    scheme: Scheme
    loaded_at: dt.datetime
    digest: str

    @property
    def id(self) -> str:
        return self.scheme.scheme

    @property
    def version(self) -> str:
        return self.scheme.version


def version_in_force(versions: Iterable[SchemeVersion], day: dt.date, known_at: dt.datetime) -> SchemeVersion | None:
    """The version in force on `day` among those loaded by `known_at` (a version without
    effective_from is in force from the beginning)."""
    candidates = [
        v
        for v in versions
        if v.loaded_at <= known_at and (v.scheme.effective_from is None or v.scheme.effective_from <= day)
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda v: (v.scheme.effective_from or dt.date.min, v.loaded_at))
