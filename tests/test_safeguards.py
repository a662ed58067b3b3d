"""Safeguard 1: no scheme may score a protected category, in English or in Chinese wording."""

from __future__ import annotations

import json

import pytest

from xinyong.errors import BadInput, Refused
from xinyong.rules.safeguards import PROTECTED_CATEGORIES, offending_category, screen_behaviours
from xinyong.rules.schemes import parse_scheme

SCHEME = """\
scheme: screen-test
version: "1"
title: Screening test
jurisdiction: "371082"
applies_to: [person]
behaviours:
  - code: TRAFFIC.MINOR
    title: Minor traffic violation
    points: -5
    validity: P1Y
    legal_basis: "Road Traffic Safety Law art. 90"
  - code: {code}
    title: {title}
    points: -10
    validity: P1Y
    legal_basis: "A regulation art. 1"
"""


def scheme_with(title: str, code: str = "CIVIL.TEST") -> str:
    # JSON strings are valid YAML scalars, so any wording goes in unescaped.
    return SCHEME.format(code=code, title=json.dumps(title, ensure_ascii=False))


def refused(title: str, code: str = "CIVIL.TEST") -> Refused:
    with pytest.raises(Refused) as caught:
        parse_scheme(scheme_with(title, code))
    return caught.value


# (category, wording) — at least one English and one Chinese wording for every category.
PROTECTED_WORDINGS: list[tuple[str, str]] = [
    ("political opinion", "Expressing political opinions in public"),
    ("political opinion", "发表错误政见"),
    ("petitioning", "Abnormal petitioning in Beijing"),
    ("petitioning", "越级上访"),
    ("petitioning", "非正常信访"),
    ("speech or online comments", "Posting negative online comments about officials"),
    ("speech or online comments", "网络评论中发表不当言论"),
    ("religion", "Participating in unregistered religious activities"),
    ("religion", "参加非法宗教活动"),
    ("ethnicity", "Ethnic minority household"),
    ("ethnicity", "少数民族身份"),
    ("health or medical history", "Medical history of chronic illness"),
    ("health or medical history", "有精神疾病病史"),
    ("genetics", "Genetic test results"),
    ("genetics", "基因检测结果"),
    ("biometrics", "Refusing fingerprint collection"),
    ("biometrics", "拒绝人脸采集"),
    ("blood type", "Rare blood type"),
    ("blood type", "血型为熊猫血"),
    ("sexual life", "Sexual orientation"),
    ("sexual life", "婚外性行为"),
    ("trade-union membership", "Joining an independent trade union"),
    ("trade-union membership", "组织工会"),
    ("family relations", "Failure to visit elderly parents"),
    ("family relations", "Lack of filial piety"),
    ("family relations", "不常回家看看父母"),
    # wordings the first version of the patterns missed
    ("political opinion", "Criticising the government on social platforms"),
    ("political opinion", "妄议中央大政方针"),
    ("religion", "Attending an unregistered church"),
    ("religion", "参加地下教会"),
    ("ethnicity", "Uyghur household"),
    ("health or medical history", "HIV status"),
    ("health or medical history", "乙肝病毒携带者"),
    ("sexual life", "Extramarital affair"),
    ("sexual life", "同性恋"),
    ("family relations", "Failure to support elderly parents"),
    ("family relations", "不赡养老人"),
]


def is_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_every_category_is_tested_in_both_languages() -> None:
    names = {c.name for c in PROTECTED_CATEGORIES}
    assert len(names) == 12
    english = {name for name, text in PROTECTED_WORDINGS if not is_chinese(text)}
    chinese = {name for name, text in PROTECTED_WORDINGS if is_chinese(text)}
    assert english == names
    assert chinese == names


def test_abnormal_petitioning_is_refused_naming_the_behaviour_and_its_line() -> None:
    error = refused("Abnormal petitioning (非正常上访)", code="CIVIL.PETITION")
    assert isinstance(error, BadInput)
    assert error.exit_code == 2
    (problem,) = error.problems
    assert "CIVIL.PETITION" in problem.where
    assert "Abnormal petitioning (非正常上访)" in problem.why
    assert "petitioning" in problem.why
    assert problem.line == 12  # the line of "- code: CIVIL.PETITION"
    assert "line 12" in problem.where
    assert "CIVIL.PETITION" in error.render()


@pytest.mark.parametrize(("category", "wording"), PROTECTED_WORDINGS)
def test_protected_wording_is_refused(category: str, wording: str) -> None:
    error = refused(wording)
    (problem,) = error.problems
    assert category in problem.why
    assert "CIVIL.TEST" in problem.where
    assert wording in problem.why


@pytest.mark.parametrize(("category", "wording"), PROTECTED_WORDINGS)
def test_protected_wording_is_refused_in_title_zh_and_description(category: str, wording: str) -> None:
    for key in ("title_zh", "description"):
        found = offending_category({"code": "CIVIL.TEST", "title": "Neutral", key: wording})
        assert found is not None, key
        assert found[0].name == category


def test_the_code_alone_is_screened() -> None:
    error = refused("Item 7", code="CIVIL.RELIGIOUS_ACTIVITY")
    assert "religion" in error.problems[0].why


def test_refusal_wins_over_other_mistakes_and_lists_them_too() -> None:
    text = scheme_with("Abnormal petitioning").replace("    validity: P1Y\n", "", 1)
    with pytest.raises(Refused) as caught:
        parse_scheme(text)
    whys = [p.why for p in caught.value.problems]
    assert any("petitioning" in why for why in whys)
    assert any("required" in why.lower() for why in whys)


def test_every_offending_behaviour_is_reported() -> None:
    behaviours = [
        {"code": "A.ONE", "title": "Blood type"},
        {"code": "A.TWO", "title": "Food safety violation"},
        {"code": "A.THREE", "title": "信教"},
    ]
    problems = screen_behaviours(behaviours, lambda index: 100 + index)
    assert [(p.column, p.line) for p in problems] == [
        ("behaviours[0]", 100),
        ("behaviours[2]", 102),
    ]


def test_screen_ignores_what_is_not_a_list_of_mappings() -> None:
    assert screen_behaviours(None, lambda _: None) == []
    assert screen_behaviours(["TRAFFIC.MINOR", 3], lambda _: None) == []


ORDINARY = [
    "Voluntary blood donation",
    "Medical insurance fraud",
    "Food safety violation",
    "Failure to perform an effective judgment",
    "Unlicensed operation",
    "无偿献血",
    "骗取医疗保险基金",
    "Malicious litigation in bad faith",
    "Breach of good faith in performing a contract",
    "Bad-faith trademark registration",
    "Illegal street race",
    "欺诈性行为",
    "误导性行为",
    "滥用市场支配地位的排他性行为",
    "Adulterated food products",
    "Tax evasion",
    "Failure to publish the annual report",
]


@pytest.mark.parametrize("title", ORDINARY)
def test_ordinary_regulatory_behaviour_passes(title: str) -> None:
    scheme = parse_scheme(scheme_with(title))
    assert scheme.behaviours[1].title == title
    assert offending_category({"code": "X.Y", "title": title}) is None


def test_matches_are_case_insensitive_in_english() -> None:
    assert offending_category({"code": "X.Y", "title": "POLITICAL ACTIVITY"}) is not None
    assert offending_category({"code": "X.Y", "title": "Religion"}) is not None


def test_words_only_match_whole_words() -> None:
    # "race" inside "trace", "gene" inside "general", "iris" inside "irish"
    for title in ("Failure to trace products", "General violation", "Irish whiskey mislabelling"):
        assert offending_category({"code": "X.Y", "title": title}) is None, title
