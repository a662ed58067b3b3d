"""A scheme's rules and periods in words, in both languages: no JSON, no ISO 8601 left for a reader."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from helpers import DEMO_CITY
from xinyong.i18n import Text
from xinyong.presentation import wording
from xinyong.rules.periods import Period
from xinyong.rules.schemes import Rule, parse_scheme

SCHEME = parse_scheme(DEMO_CITY)
EN, ZH = Text("en"), Text("zh_Hans")


def test_periods_read_as_people_count() -> None:
    assert EN.period("P10D") == "10 days"
    assert EN.period("P1Y") == "1 year"
    assert EN.period("P1Y6M") == "1 year 6 months"
    assert EN.period("P0D") == "none"
    assert EN.period(Period(), "at once") == "at once"
    assert ZH.period("P10D") == "10 天"
    assert ZH.period("P1Y") == "1 年"
    assert ZH.period("P3M") == "3 个月"
    assert ZH.period("P0D", "at once") == "即时"


@given(st.integers(0, 50), st.integers(0, 11), st.integers(0, 400))
def test_a_period_in_words_names_every_part_and_no_iso_letter(years: int, months: int, days: int) -> None:
    period = Period(years=years, months=months, days=days)
    for t in (EN, ZH):
        words = t.period(period)
        assert "P" not in words
        numbers = [int(w) for w in words.split() if w.isdigit()]
        assert numbers == [n for n in (years, months, days) if n]


def test_rules_read_as_sentences_with_the_behaviours_titles() -> None:
    lists = {x.id: wording.rule(EN, x.rule, SCHEME) for x in SCHEME.lists}
    assert lists["defaulters"] == "an active record of Failure to perform an effective judgment"
    assert lists["repeat-traffic"] == (
        "at least 3 active records of Minor traffic violation that occurred within the last 6 months"
    )
    assert lists["model"] == "grade AAA"
    fast = wording.rule(EN, SCHEME.measure_by_id["fast-track"].applies_when, SCHEME)
    assert fast == "grade AAA or AA; or on the list Model citizens"
    flights = wording.rule(ZH, SCHEME.measure_by_id["no-flights"].applies_when, SCHEME)
    assert flights == "列入“Dishonest judgment defaulters”名单"  # the scheme gives no title_zh: its own title


def test_nested_groups_are_bracketed_and_other_schemes_lists_named() -> None:
    nested = Rule.model_validate(
        {"all": [{"on_list": "court-defaulters/defaulters"}, {"any": [{"grade_in": ["D"]}, {"grade_in": ["C"]}]}]}
    )
    said = wording.rule(EN, nested, SCHEME)
    assert said == "on the list defaulters of scheme court-defaulters; and (grade D; or grade C)"
    for text in (said, wording.rule(ZH, nested, SCHEME)):
        assert "{" not in text
        assert "grade_in" not in text


def test_every_data_class_is_explained_in_both_languages() -> None:
    assert set(wording.DATA_CLASS_HELP) == {"public", "market", "restricted"}
    for message in wording.DATA_CLASS_HELP.values():
        assert ZH(message) != message
