"""The policy lab's routes under /v1/lab: a draft's simulated impact, two schemes compared, and a
scheme's fairness.

Aggregates only (the analyst's, with small cells withheld; the administrator's exact): the
per-subject before/after file is the command line's (`simulate --out`), never an answer here. Both
run on DuckDB; Spark is for the operator's batch (`--engine spark`).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, BeforeValidator, Field

from xinyong.interfaces.api import models
from xinyong.interfaces.api.routes import AsOf, Caller, SchemeId, Svc

router = APIRouter(prefix="/v1/lab", responses=models.PROBLEMS)

GroupField = Literal["division", "kind", "sex", "age_band"]
Count = int | None  # null: withheld, fewer subjects than the minimum cell size


class Moves(BaseModel):
    before: Count
    after: Count
    enter: Count = Field(description="Subjects on it under the draft and not under the version in force.")
    leave: Count = Field(description="Subjects on it under the version in force and not under the draft.")


class ScoreMeans(BaseModel):
    mean_before: float | None
    mean_after: float | None


class Impact(BaseModel):
    subjects: Count = Field(description="Subjects with state under the version in force or the draft.")
    changed: Count = Field(description="Subjects whose score, grade, lists or measures differ.")
    grades: dict[str, Count] = Field(description='{"FROM→TO": subjects} for every pair with FROM ≠ TO; "—" for none.')
    lists: dict[str, Moves]
    measures: dict[str, Moves]
    score: ScoreMeans


class SimulationIn(BaseModel):
    draft: str = Field(min_length=1, max_length=1_000_000, description="The draft scheme's YAML text.")
    as_of: Annotated[dt.date | None, BeforeValidator(models.read_day), Field(json_schema_extra=models.DAY_SCHEMA)] = (
        None
    )
    by: list[GroupField] = Field(default_factory=list, max_length=4, description="Fields to group by, crossed.")


class SimulationOut(Impact):
    scheme: str
    baseline_version: str
    draft_version: str
    as_of: str
    known_at: str
    engine: str
    by: list[str]
    groups: dict[str, Impact] | None = Field(None, description='Per value of the `by` fields, joined by " / ".')
    min_cell: int | None = None


class Rate(BaseModel):
    rate: float | None = Field(description="The share of the group on the list or under the measure.")
    ratio: float | None = Field(description="The favourable share over the most favoured group's.")
    ci: list[float] | None = Field(description="95% bootstrap interval of the ratio.", min_length=2, max_length=2)
    flag: bool = Field(description="The ratio is under 0.8 (four-fifths rule); never for a group under 30.")


class FairnessGroup(BaseModel):
    n: Count
    too_few: bool
    mean_score: float | None
    grades: dict[str, float | None]
    lists: dict[str, Rate]
    measures: dict[str, Rate]


class FairnessOut(BaseModel):
    scheme: str
    version: str
    as_of: str
    known_at: str
    by: str
    too_few_below: int
    flag_below: float
    resamples: int
    seed: int
    groups: dict[str, FairnessGroup]
    min_cell: int | None = None


class Treatment(BaseModel):
    title: str
    points: int
    cap: int | None
    validity: str
    notice: str
    severity: str
    lists: list[str] = Field(description="The scheme's lists whose rule counts this conduct.")
    list_kinds: list[str] = Field(description="Their kinds (black, red, watch), which the comparison compares.")


class RuleCompared(BaseModel):
    a: Treatment | None
    b: Treatment | None
    only_in: Literal["a", "b"] | None
    differs: list[str]


class ListCompared(BaseModel):
    kind: str
    subjects: Count
    not_under_other: Count = Field(description="Of them, on no list of the same kind under the other scheme.")


class SchemeRef(BaseModel):
    scheme: str
    version: str


class ComparisonOut(BaseModel):
    a: SchemeRef
    b: SchemeRef
    as_of: str
    known_at: str
    rules: dict[str, RuleCompared] = Field(description="Per behaviour code, as each scheme treats it.")
    subjects: Count = Field(description="Subjects with state under both schemes.")
    grades: dict[str, Count] = Field(description='{"GRADE_A→GRADE_B": subjects}.')
    lists: dict[Literal["a", "b"], dict[str, ListCompared]]
    min_cell: int | None = None


@router.post("/simulations", tags=["lab"], response_model=SimulationOut)
def simulate(body: SimulationIn, principal: Caller, svc: Svc) -> dict[str, Any]:
    """What a draft (a new version of a loaded scheme, validated like any, never loaded) would change
    over the whole population on a day: grade transitions, list and measure entries and exits, mean
    scores, per group. Analysts and the administrator."""
    return svc.lab.simulate(principal, body.draft, where="draft", as_of=body.as_of, by=body.by)


@router.get("/comparisons/{scheme_a}/{scheme_b}", tags=["lab"], response_model=ComparisonOut)
def compare(scheme_a: SchemeId, scheme_b: SchemeId, principal: Caller, svc: Svc, as_of: AsOf = None) -> dict[str, Any]:
    """Two schemes rule by rule (conduct matched by code) and population by population (grade
    against grade for the subjects under both; lists of one kind in one place only). Analysts and
    the administrator."""
    return svc.lab.compare(principal, scheme_a, scheme_b, as_of=as_of)


@router.get("/fairness/{scheme}", tags=["lab"], response_model=FairnessOut)
def fairness(
    scheme: SchemeId,
    principal: Caller,
    svc: Svc,
    by: Annotated[GroupField, Query(description="The field whose groups are compared.")],
    as_of: AsOf = None,
) -> dict[str, Any]:
    """Per group: every list's and measure's rate, its ratio to the most favoured group's with a 95%
    bootstrap interval, and the four-fifths flag. Analysts and the administrator."""
    return svc.lab.fairness(principal, scheme, by=by, as_of=as_of)
