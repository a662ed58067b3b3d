"""Notices: generated in the ledger's own transaction for every adverse record and its events.

The person has consented to demo-city; COURT.DEFAULT is -100 points, notice P10D, feeds the
defaulters black list and with it the no-flights measure; CHARITY.BLOOD is positive.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from helpers import World, at, d, person_id
from xinyong.due_process import notices, objections, repairs
from xinyong.due_process.after_append import AFTER_APPEND
from xinyong.errors import BadInput, NotFound
from xinyong.ledger import imports
from xinyong.storage import tables as t
from xinyong.storage.store import Store


@pytest.fixture
def subjects(world: World) -> tuple[str, str]:
    return world.standard()


def inbox(store: Store, subject: str) -> list[notices.Notice]:
    with store.read() as conn:
        return list(reversed(notices.inbox(conn, subject)))  # oldest first


def test_an_adverse_record_gets_a_notice_saying_what_who_basis_effect_and_how_to_object(
    world: World, subjects: tuple[str, str]
) -> None:
    person, _ = subjects
    record = world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    [notice] = inbox(world.store, person)
    assert notice.kind == "recorded"
    assert notice.record_id == record
    assert notice.event_id is None
    assert notice.takes_effect_on == d("2026-03-12")  # recorded 03-02 + P10D
    assert notice.object_by == d("2026-03-11")  # the last day an objection holds the record
    facts = notice.facts
    assert facts["record"]["ref"] == "court:DOC-1"
    assert facts["record"]["source"] == "court"
    assert facts["record"]["recorded_by"] == "test"
    assert facts["record"]["legal_basis"] == "SPC provisions 2017 art. 1"
    [scheme] = facts["schemes"]
    assert scheme["points"] == -100
    assert [x["id"] for x in scheme["lists"]] == ["defaulters"]
    assert [m["id"] for m in scheme["measures"]] == ["no-flights"]
    assert scheme["takes_effect_on"] == "2026-03-12"
    assert scheme["until"] == "2028-03-01"
    assert facts["objection_deadline"] == 5

    english = notices.render(notice, "en")
    assert english.subject == "A record about you was recorded: Failure to perform an effective judgment"
    for expected in (
        "Record court:DOC-1 from court",
        "Legal basis: SPC provisions 2017 art. 1",
        "Under Demo City citizen credit scheme: -100 points.",
        "It feeds the black list Dishonest judgment defaulters.",
        "Measure that follows: No air tickets",
        "It takes effect on 12 March 2026 and counts until 1 March 2028.",
        "object by 11 March 2026",
        "within 5 working days",
        "choose “Object” beside record court:DOC-1",
        "credit office with the reference court:DOC-1",
    ):
        assert expected in english.body, expected
    assert english.subject not in english.body  # titled once: the subject line is the title
    assert "xinyong" not in english.body
    assert "/v1/" not in english.body
    chinese = notices.render(notice, "zh_Hans")
    assert chinese.subject.startswith("一条关于您的记录已登记")
    assert "法律依据：SPC provisions 2017 art. 1" in chinese.body
    assert "自 2026年3月12日 起生效" in chinese.body
    assert "2026年3月11日" in chinese.body
    assert "court:DOC-1" in chinese.body
    assert chinese.subject not in chinese.body


def test_positive_records_get_no_notice(world: World, subjects: tuple[str, str]) -> None:
    person, _ = subjects
    world.record(person, "CHARITY.BLOOD", "2026-03-01", at("2026-03-02"))
    assert inbox(world.store, person) == []


def test_every_event_of_an_adverse_record_gets_a_notice(world: World, subjects: tuple[str, str]) -> None:
    person, _ = subjects
    first = world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    second = world.record(person, "TRAFFIC.MINOR", "2026-03-01", at("2026-03-02"))
    objection = world.object(first, at("2026-03-05"))
    world.decide(objection, "corrected", at("2026-03-09"), occurred_on=d("2026-02-01"))
    world.end(first, "2026-04-01", at("2026-04-01"))
    world.correct(second, at("2026-03-06"), occurred_on=d("2026-02-27"))
    world.revoke(second, at("2026-03-07"))
    kinds = [(n.record_id, n.kind) for n in inbox(world.store, person)]
    assert kinds == [
        (first, "recorded"),
        (second, "recorded"),
        (first, "disputed"),
        (first, "decided"),
        (first, "ended"),
        (second, "corrected"),
        (second, "revoked"),
    ]
    by_kind = {n.kind: n for n in inbox(world.store, person)}
    disputed = by_kind["disputed"]
    assert disputed.facts["schemes"][0]["held"] is True
    assert disputed.takes_effect_on is None
    assert "You filed objection" in notices.render(disputed, "en").body
    assert "must decide it by 12 March 2026" in notices.render(disputed, "en").body
    decided = by_kind["decided"]
    text = notices.render(decided, "en").body
    assert "Decision by test: corrected: the record was changed." in text
    assert "Corrected to: occurred on 1 February 2026." in text
    assert "Reasons: checked" in text
    assert decided.takes_effect_on == d("2026-03-12")  # max(notice end 03-12, decided 03-09)
    assert "Object" not in text  # the decision answers an objection: it invites none
    revoked = notices.render(by_kind["revoked"], "en").body
    assert "it has no effect: the record is revoked and never counted." in revoked
    for claim in ("points", "It feeds", "Measure that follows", "takes effect", "object", "repair"):
        assert claim not in revoked, claim  # a revoked record's notice claims no effect and invites nothing
    ended = notices.render(by_kind["ended"], "en").body
    assert "Its effect ends on 1 April 2026: the obligation was fulfilled." in ended
    assert "it no longer counts." in ended
    assert "object" not in ended
    assert "points" not in ended


def test_an_officer_filing_on_the_subjects_behalf_is_named(world: World, subjects: tuple[str, str]) -> None:
    person, _ = subjects
    record = world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    with world.store.write() as conn:
        status = objections.file(
            conn, record, reason="paid before judgment", now=at("2026-03-04"), actor="office:wang", filed_as="officer"
        )
    assert (status.filed_by, status.filed_as) == ("office:wang", "officer")
    with world.store.read() as conn:
        assert objections.get(conn, status.id).filed_as == "officer"
        notice = notices.inbox(conn, person)[0]
    assert notice.facts["event"]["actor"] == "office:wang"
    assert "Objection" in notices.render(notice, "en").body
    assert "filed for you by office:wang of the credit office" in notices.render(notice, "en").body
    with world.store.write() as conn, pytest.raises(BadInput):
        objections.file(conn, record, reason="x", now=at("2026-03-04"), actor="x", filed_as="neighbour")


def test_an_approved_repair_gives_one_notice_for_the_decision(world: World, subjects: tuple[str, str]) -> None:
    person, _ = subjects
    record = world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    with world.store.write() as conn:
        repair = repairs.apply(conn, record, evidence="paid", now=at("2026-03-20"), actor=person)
        repairs.decide(conn, repair.id, outcome="approved", reason="paid in full", now=at("2026-03-23"), actor="office")
    kinds = [n.kind for n in inbox(world.store, person)]
    assert kinds == ["recorded", "repair_applied", "repair_decided"]
    text = notices.render(inbox(world.store, person)[-1], "en").body
    assert "Decision by office: approved: the record's effect ends." in text
    assert "Reasons: paid in full" in text


def test_a_bulk_import_writes_its_notices_in_bulk_and_a_second_import_none(
    world: World, subjects: tuple[str, str]
) -> None:
    person, org = subjects
    body = "subject_id,behaviour,occurred_on,document_ref\n" + "".join(
        f"{person if n % 2 else org},COURT.DEFAULT,2026-01-{n:02d},BULK-{n}\n" for n in range(1, 21)
    )
    for _ in range(2):
        with world.store.write() as conn:
            imports.import_records(
                conn, "bulk.csv", body.encode(), source="court", now=at("2026-03-02"), actor="t", after=AFTER_APPEND
            )
    with world.store.read() as conn:
        assert notices.count(conn) == 20
        assert notices.count(conn, org) == 10
        assert len(notices.inbox(conn, person, limit=3)) == 3


def test_records_written_by_another_path_get_their_notices_once(world: World, subjects: tuple[str, str]) -> None:
    person, _ = subjects
    first = world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    second = world.record(person, "TRAFFIC.MINOR", "2026-03-01", at("2026-03-02"))
    with world.store.write() as conn:
        conn.execute(t.outbox.delete().where(t.outbox.c.notice_id.in_(select(t.notices.c.id))))
        conn.execute(t.notices.delete())
        assert notices.for_record_ids(conn, [first, second], at("2026-03-02")) == 2
        assert notices.for_record_ids(conn, [first, second], at("2026-03-02")) == 0
    assert [n.record_id for n in inbox(world.store, person)] == [first, second]


def test_a_refused_import_leaves_no_notice(world: World, subjects: tuple[str, str]) -> None:
    person, _ = subjects
    body = f"subject_id,behaviour,occurred_on,document_ref\n{person},COURT.DEFAULT,2026-01-01,A\n{person},NOPE,x,B\n"
    with world.store.write() as conn, pytest.raises(BadInput):
        imports.import_records(
            conn, "bad.csv", body.encode(), source="court", now=at("2026-03-02"), actor="t", after=AFTER_APPEND
        )
    with world.store.read() as conn:
        assert notices.count(conn) == 0


def test_the_inbox_marks_read_and_contacts_choose_email_and_language(world: World, subjects: tuple[str, str]) -> None:
    person, _ = subjects
    with world.store.write() as conn:
        contact = notices.set_contact(conn, person, email="zhang@example.org", lang="en", now=at("2026-03-01"))
        assert contact.language == "en"
        with pytest.raises(BadInput):
            notices.set_contact(conn, person, email="not an address", lang=None, now=at("2026-03-01"))
        with pytest.raises(NotFound):
            notices.set_contact(conn, person_id(99), email=None, lang=None, now=at("2026-03-01"))
        with pytest.raises(BadInput, match="wrong check character"):
            notices.set_contact(conn, "110105199001019999", email=None, lang=None, now=at("2026-03-01"))
        with pytest.raises(BadInput):
            notices.set_contact(conn, person, email=None, lang="fr", now=at("2026-03-01"))
    world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02"))
    with world.store.write() as conn:
        [notice] = notices.inbox(conn, person, unread_only=True)
        portal, email = notices.deliveries(conn, notice)
        # The portal had it when it was written; the e-mail waits for a delivery run.
        assert (portal["channel"], portal["state"]) == ("portal", "delivered")
        assert portal["delivered_at"] == at("2026-03-02").isoformat()
        assert (email["channel"], email["address"], email["state"]) == ("email", "zhang@example.org", "pending")
        read = notices.mark_read(conn, notice.id, at("2026-03-03"))
        assert read.read_at == at("2026-03-03")
        notices.mark_read(conn, notice.id, at("2026-03-04"))  # the first reading is kept
        assert notices.get(conn, notice.id).read_at == at("2026-03-03")
        assert notices.inbox(conn, person, unread_only=True) == []
        data = notices.to_dict(notices.get(conn, notice.id), "en")
        assert data["title"].startswith("A record about you was recorded")
        assert data["object_by"] == "2026-03-11"
        with pytest.raises(NotFound):
            notices.get(conn, 999_999)


def test_notice_times_are_the_events_times(world: World, subjects: tuple[str, str]) -> None:
    person, _ = subjects
    world.record(person, "COURT.DEFAULT", "2026-03-01", at("2026-03-02", 9))
    [notice] = inbox(world.store, person)
    assert notice.created_at == at("2026-03-02", 9)
    assert notice.created_at.tzinfo == dt.UTC


def test_bulk_templates_leave_room_for_every_record_field_or_refuse(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bulk path renders one notice per (behaviour, occurred_on, subject kind) and pastes each
    record's own fields in; a notice that showed any other record field is refused, not guessed."""
    from helpers import DEMO_CITY
    from xinyong.rules.schemes import SchemeVersion, parse_scheme

    scheme = parse_scheme(DEMO_CITY)
    versions = [SchemeVersion(scheme, at("2020-01-01"), scheme.digest())]
    keys = [("COURT.DEFAULT", d("2026-01-05"), "person"), ("CHARITY.BLOOD", d("2026-01-05"), "person")]
    [template] = notices.fresh_templates(keys, at("2026-03-02"), versions)
    assert (template.behaviour, template.takes_effect_on, template.object_by) == (
        "COURT.DEFAULT",
        d("2026-03-12"),
        d("2026-03-11"),
    )
    assert sorted(template.fields) == ["amount", "document_ref", "id", "recorded_by", "ref", "source"]
    assert len(template.parts) == len(template.fields) + 1
    from xinyong.due_process.notices import facts

    showing_the_note = facts._record_facts

    def with_note(record: object, *args: object) -> dict[str, object]:
        facts = showing_the_note(record, *args)  # type: ignore[arg-type]
        facts["record"]["note"] = record.note  # type: ignore[attr-defined, index]
        return facts

    monkeypatch.setattr(facts, "_record_facts", with_note)
    with pytest.raises(RuntimeError, match="does not fill in"):
        notices.fresh_templates(keys, at("2026-03-02"), versions)


def test_a_templated_text_is_its_parts_with_the_values_between_them() -> None:
    assert t.facts_text('{"a": 1}', None, None) == '{"a": 1}'
    assert t.facts_text(None, '["{\\"id\\": ", ", \\"ref\\": \\"", "}"]', '7\x1fX"') == '{"id": 7, "ref": "X"}'
    assert t.facts_text(None, '["{}"]', "") == "{}"
    with pytest.raises(RuntimeError, match="do not fit"):
        t.facts_text(None, '["a", "b"]', "1\x1f2")
    with pytest.raises(RuntimeError, match="neither"):
        t.facts_text(None, None, None)
