"""Who looked, as the subject reads it: its own reads gathered into one row a day, everyone
else's acts one row each, in words and local time."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from helpers import person_id
from xinyong.i18n import Text
from xinyong.presentation.looked import ACTIONS, OUTCOMES, rows
from xinyong.security.access import Action

P = person_id(1)
ZONE = "Asia/Shanghai"


def entry(at: str, action: str, role: str = f"subject:{P}", outcome: str = "done", **more: str) -> dict[str, str]:
    return {"at": at, "action": action, "role": role, "actor": f"web:{P}", "outcome": outcome, **more}


def test_a_day_of_own_visits_is_one_row_and_others_stay_one_each() -> None:
    entries = [  # newest first, as the log gives them
        entry("2026-12-07T14:42:00+00:00", "reports.read", purpose="own report (web)"),
        entry("2026-12-07T14:42:00+00:00", "records.read", purpose="notices inbox"),
        entry("2026-12-07T09:00:00+00:00", "checks.ask", role="enforcer:civil-aviation", actor="airline-1"),
        entry("2026-12-07T08:10:00+00:00", "reports.read"),
        entry("2026-12-07T08:00:00+00:00", "objections.file"),  # an act of its own, not a look: kept
        entry("2026-12-06T15:30:00+00:00", "reports.read"),  # 23:30 in Shanghai: the 6th
        entry("2026-12-06T16:30:00+00:00", "reports.read"),  # 00:30 in Shanghai: the 7th
    ]
    en = rows(Text("en"), entries, P, ZONE)
    own = [r for r in en if r["own"]]
    assert [r["count"] for r in own] == [4, 1]
    assert own[0]["when"] == "7 December 2026, 22:42 (China Standard Time)"
    assert own[0]["first"] == "7 December 2026, 00:30 (China Standard Time)"
    enforcer = next(r for r in en if not r["own"] and r["what"] == "checked whether a measure applies")
    assert enforcer["role"] == "enforcer · civil-aviation"
    assert enforcer["outcome"] == "done"
    assert any(r["what"] == "filed an objection" and r["who"] == "you" for r in en)
    zh = rows(Text("zh_Hans"), entries, P, ZONE)
    assert zh[0]["when"] == "2026年12月7日 22:42 (中国标准时间)"
    assert all("." not in str(r["what"]) for r in zh)


@given(st.lists(st.sampled_from(["reports.read", "records.read", "state.read"]), min_size=1, max_size=30))
def test_own_reads_of_one_day_always_make_one_row_counting_them_all(actions: list[str]) -> None:
    entries = [entry(f"2026-12-07T{i % 10:02d}:00:00+00:00", a) for i, a in enumerate(actions)]
    [row] = rows(Text("en"), entries, P, ZONE)
    assert row["count"] == len(actions)


def test_every_action_a_subject_may_see_has_words() -> None:
    about_a_person = {
        Action.SUBJECTS_READ,
        Action.RECORDS_READ,
        Action.RECORDS_SUBMIT,
        Action.RECORDS_CORRECT,
        Action.RECORDS_REVOKE,
        Action.RECORDS_END,
        Action.STATE_READ,
        Action.CHECKS_ASK,
        Action.REPORTS_READ,
        Action.OBJECTIONS_FILE,
        Action.OBJECTIONS_DECIDE,
        Action.CONSENT_CHANGE,
        Action.AUDIT_WHO_LOOKED,
    }
    assert {a.value for a in about_a_person} <= set(ACTIONS)
    zh = Text("zh_Hans")
    assert all(zh(message) != message for message in (*ACTIONS.values(), *OUTCOMES.values()))
