"""The rule language's finer forms, through the pure engine: people from data, fallbacks,
`at` with an offset, `changed`, seasons, once per event, look-ups by stage."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import yaml

from bridge.calendar import BusinessCalendar
from bridge.models import Event, Record, RecordRef
from bridge.regulations.engine import Context, Facts, evaluate, needed_lookups
from bridge.regulations.pack import Pack

MSK = ZoneInfo("Europe/Moscow")
WEDNESDAY = datetime(2025, 10, 22, 11, 0, tzinfo=MSK)
CALENDAR = BusinessCalendar("Europe/Moscow")


def pack(rules: str) -> Pack:
    return Pack.model_validate({"pack": "t", "rules": yaml.safe_load(rules)})


def deal(**fields: object) -> Record:
    stage = fields.pop("stage", "new")
    return Record("deal", "7", "b24", stage=stage, responsible="3", title="Заказ", fields=fields)


def plan(p: Pack, record: Record, previous: Record | None = None, **ctx: object):
    event = Event(
        "t", "b24", "record.updated", RecordRef("deal", "7"), ctx.pop("now", WEDNESDAY), id=5
    )
    context = Context(ctx.pop("now_ctx", event.received_at), CALENDAR, "1", **ctx)
    return evaluate(event, record, previous, p.rules, context)


def test_a_task_goes_to_the_person_a_look_up_found() -> None:
    p = pack("""
- id: route
  lookup: {open_order: {kind: deal, where: {phone: "{{ record.fields.phone }}"}}}
  when: {if: {lookup: open_order}}
  then: [{create_task: {title: x, responsible: "{{ lookups.open_order[0].responsible }}"}}]
""")
    other = Record("deal", "2", "b24", responsible="12")
    facts = Facts(lookups={"route": {"open_order": (other,)}})
    [task] = plan(p, deal(phone="+79120000000"), deal(), facts=facts).actions
    assert task.params.responsible == "12"


def test_a_task_falls_back_when_nobody_of_the_role_is_at_work() -> None:
    p = pack("""
- id: t
  then: [{create_task: {title: x, responsible: duty, fallback: head, priority: high}}]
""")
    night = datetime(2025, 10, 22, 21, 0, tzinfo=MSK)
    people = {"duty": ("4",), "head": ("9",)}
    schedules = {
        "9": BusinessCalendar("Europe/Moscow", {2: (datetime.min.time(), datetime.max.time())})
    }
    [task] = plan(p, deal(), deal(), now=night, people=people, schedules=schedules).actions
    assert (task.params.responsible, task.params.priority) == ("9", "high")


def test_at_a_field_plus_an_offset() -> None:
    p = pack("""
- id: after-visit
  when: {in_stage: meeting}
  at: visit_at + 70 minutes
  then: [{add_comment: {text: x}}]
""")
    [timer] = plan(p, deal(stage="meeting", visit_at="2025-10-22T12:00:00+03:00"), None).timers
    assert timer.due == datetime(2025, 10, 22, 13, 10, tzinfo=MSK)


def test_changed_sees_only_this_events_change() -> None:
    p = pack("""
- id: vip
  when: {if: {all: [{changed: client_class}, {field: client_class, equals: supervip}]}}
  then: [{add_comment: {text: x}}]
""")
    assert len(plan(p, deal(client_class="supervip"), deal(client_class="regular")).actions) == 1
    assert plan(p, deal(client_class="supervip"), deal(client_class="supervip")).actions == ()


def test_a_season_wraps_over_the_new_year() -> None:
    p = pack("""
- id: season
  when: {if: {today_between: ["12-15", "01-10"]}}
  then: [{add_comment: {text: x}}]
""")
    january = datetime(2026, 1, 5, 12, 0, tzinfo=MSK)
    assert len(plan(p, deal(), deal(), now=january).actions) == 1
    assert plan(p, deal(), deal()).actions == ()


def test_once_per_event_gives_each_event_its_own_key() -> None:
    p = pack("""
- id: every-time
  repeat: per_event
  then: [{add_comment: {text: x}}]
""")
    first = plan(p, deal(), deal()).actions[0].key
    event = Event("t", "b24", "record.updated", RecordRef("deal", "7"), WEDNESDAY, id=6)
    second = evaluate(event, deal(), deal(), p.rules, Context(WEDNESDAY, CALENDAR, "1")).actions[0]
    assert first != second.key


def test_a_look_up_can_ask_for_stages() -> None:
    p = pack("""
- id: open-orders
  lookup:
    mine: {kind: deal, where: {phone: "{{ record.fields.phone }}"}, in_stage: [in_work, processed]}
  when: {if: {lookup: mine}}
  then: [{add_comment: {text: x}}]
""")
    event = Event("t", "b24", "record.updated", RecordRef("deal", "7"), WEDNESDAY)
    queries = needed_lookups(event, deal(phone="1"), deal(), p.rules, Context(WEDNESDAY, CALENDAR))
    query = queries["open-orders"]["mine"]
    assert (query.where, query.in_stage) == ((("phone", "1"),), ("in_work", "processed"))


def test_a_broadcast_judges_only_the_rules_that_name_it_and_enters_no_stage() -> None:
    p = pack("""
- id: any-event
  when: {kind: deal, if: {field: client_class, equals: vip}}
  then: [{add_comment: {text: "на любое событие"}}]
- id: on-entering-won
  when: {kind: deal, stage_to: won, event: [record.updated, broadcast]}
  then: [{add_comment: {text: "договор исполнен"}}]
- id: mailing
  when: {kind: deal, event: broadcast}
  then: [{send_email: {template: new_product, to: client}}]
""")
    event = Event("t", "b24", "broadcast", RecordRef("deal", "7"), WEDNESDAY, "broadcast", 5)
    won = deal(stage="won", client_class="vip")  # first met here: no previous snapshot
    got = evaluate(event, won, None, p.rules, Context(WEDNESDAY, CALENDAR, "1"))
    assert [a.rule for a in got.actions] == ["mailing"]
