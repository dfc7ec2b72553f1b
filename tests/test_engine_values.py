"""The language's words for values, through the pure engine: typed emptiness and equality
(one pack on every CRM), two fields compared, the tenant's constants, a surname in a text,
`changed` only with a previous value, look-ups only when they can matter, labels in texts."""

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
MONEY = {"deal": {"amount": "money", "staff_discount": "number", "paid": "yesno"}}


def pack(rules: str, constants: str = "{}") -> Pack:
    data = {"pack": "t", "constants": yaml.safe_load(constants), "rules": yaml.safe_load(rules)}
    return Pack.model_validate(data)


def comment_rule(rule_id: str, condition: str) -> str:
    return f"- {{id: {rule_id}, when: {{if: {condition}}}, then: [{{add_comment: {{text: x}}}}]}}"


def deal(amount: float | None = None, **fields: object) -> Record:
    stage = fields.pop("stage", "new")
    return Record(
        "deal",
        "7",
        "crm",
        stage=stage,
        responsible="3",
        title="Заказ",
        amount=amount,
        fields=fields,
    )


def ctx(**extra: object) -> Context:
    facts = extra.pop("facts", Facts())
    return Context(WEDNESDAY, CALENDAR, "1", facts=facts, **extra)  # type: ignore[arg-type]


def fired(p: Pack, record: Record, previous: Record | None = None, **extra: object) -> list[str]:
    event = Event("t", "crm", extra.pop("type", "record.updated"), record.ref, WEDNESDAY, id=5)
    plan = evaluate(event, record, previous, p.rules, ctx(**extra))
    return [d.rule for d in plan.decisions if d.verdict == "fired"]


def test_a_zero_amount_is_empty_when_the_mapping_says_money() -> None:
    p = pack(
        "- {id: no-sum, when: {if: {field: amount, empty: true}}, then: [{add_comment: {text: x}}]}"
    )
    # amoCRM's price is 0 when nobody entered a budget; Bitrix24's OPPORTUNITY "0.00"
    assert fired(p, deal(0.0), deal(0.0), types=MONEY) == ["no-sum"]
    assert fired(p, deal(1500.0), deal(0.0), types=MONEY) == []


def test_a_number_equals_its_text_whatever_the_crm_wrote() -> None:
    p = pack(comment_rule("seven", "{field: staff_discount, equals: '7'}"))
    assert fired(p, deal(staff_discount=7.0), deal(), types=MONEY) == ["seven"]
    assert fired(p, deal(staff_discount="7.00"), deal(), types=MONEY) == ["seven"]
    assert fired(p, deal(staff_discount=7.0), deal()) == ["seven"]  # untyped: by the value


def test_changed_needs_a_previous_value() -> None:
    p = pack("- {id: price, when: {if: {changed: amount}}, then: [{add_comment: {text: x}}]}")
    assert fired(p, deal(5000.0), None, types=MONEY) == []  # first sight of a lead
    assert fired(p, deal(5000.0), deal(5000.0), types=MONEY) == []
    assert fired(p, deal(5000.0), deal(0.0), types=MONEY) == ["price"]


def test_two_fields_compared_with_an_offset() -> None:
    # F20: the event's date was recorded at least a month before the order
    p = pack("""
- id: recorded-a-month-before
  when: {if: {field: event_date_recorded_at, lte: {field: created_at, minus: 1 month}}}
  then: [{add_comment: {text: x}}]
""")
    order = "2025-12-20T12:00:00+03:00"
    assert fired(p, deal(created_at=order, event_date_recorded_at="2025-11-10"), deal())
    assert not fired(p, deal(created_at=order, event_date_recorded_at="2025-11-25"), deal())
    assert not fired(p, deal(created_at=order), deal())  # no date: not earlier than anything


def test_an_order_within_seven_days_before_or_after_the_event() -> None:
    p = pack("""
- id: in-window
  when:
    if:
      all:
        - {field: created_at, gte: {field: event_date, minus: 7 days}}
        - {field: created_at, lte: {field: event_date, plus: 7 days}}
  then: [{add_comment: {text: x}}]
""")
    event = "2025-12-31"
    for day, inside in (("2025-12-24", True), ("2025-12-23", False), ("2026-01-07", True)):
        record = deal(created_at=f"{day}T15:00:00+03:00", event_date=event)
        assert bool(fired(p, record, deal())) is inside, day
    assert not fired(p, deal(created_at="2026-01-08T10:00:00+03:00", event_date=event), deal())


def test_a_constant_of_the_tenant_over_the_packs_default() -> None:
    p = pack(comment_rule("big", "{field: amount, gte: {constant: large}}"), "{large: 10000}")
    assert fired(p, deal(12000.0), deal(), constants={"large": 10000}) == ["big"]
    assert fired(p, deal(12000.0), deal(), constants={"large": 50000}) == []


def test_a_season_opened_by_the_head_of_sales() -> None:
    p = pack(
        comment_rule("season", "{today_between: [{constant: season_start}, '12-31']}"),
        "{season_start: null}",
    )
    assert fired(p, deal(), deal(), constants={"season_start": "10-01"}) == ["season"]
    assert fired(p, deal(), deal(), constants={"season_start": "11-15"}) == []
    assert fired(p, deal(), deal(), constants={"season_start": None}) == []


def test_a_comment_with_the_reason_and_an_operators_surname() -> None:
    p = pack("""
- id: signed
  when: {if: {field: comments, mentions: staff, words: 2}}
  then: [{add_comment: {text: x}}]
""")
    staff = {"surnames": {"3": "Смирнова", "4": "Кузнецова"}}
    assert fired(p, deal(comments="Клиент передумал, Смирнова"), deal(), **staff)
    assert fired(p, deal(comments="клиент передумал. смирнова"), deal(), **staff)
    assert not fired(p, deal(comments="Смирнова"), deal(), **staff)  # no reason
    assert not fired(p, deal(comments="Клиент передумал"), deal(), **staff)  # nobody signed
    assert not fired(p, deal(comments="Клиент передумал, Иванова"), deal(), **staff)


def test_look_ups_wait_for_the_rules_other_conditions_and_never_filter_by_nothing() -> None:
    p = pack("""
- id: second-order
  lookup:
    open: {kind: deal, where: {client_phone: "{{ record.fields.get('client_phone') or '' }}"}}
  when: {event: record.created, if: {all: [{field: channel, equals: site}, {lookup: open}]}}
  then: [{add_comment: {text: x}}]
- id: needs-phone
  lookup: {open: {kind: deal, where: {client_phone: "{{ record.fields.client_phone }}"}}}
  when: {event: record.created}
  require: [client_phone]
  then: [{add_comment: {text: x}}]
""")

    def asked(record: Record) -> dict:
        event = Event("t", "crm", "record.created", record.ref, WEDNESDAY)
        return needed_lookups(event, record, None, p.rules, ctx())

    assert asked(deal(client_phone="+7912", channel="phone")) == {}  # `if` fails without it
    assert list(asked(deal(client_phone="+7912", channel="site"))) == ["second-order"]
    assert asked(deal(client_phone="", channel="site")) == {}  # no phone: no filter by ""


def test_texts_show_the_mappings_labels() -> None:
    p = pack("""
- id: next-contact
  require: [next_contact_at, next_contact_goal]
  then:
    - create_task:
        title: "Не хватает: {{ missing | join(', ') }}"
        description: "{{ label('next_contact_at') }}"
""")
    labels = {"deal": {"next_contact_at": "Дата следующего контакта", "next_contact_goal": "Цель"}}
    event = Event("t", "crm", "record.updated", RecordRef("deal", "7"), WEDNESDAY, id=5)
    [task] = evaluate(event, deal(), deal(), p.rules, ctx(labels=labels)).actions
    assert task.params.title == "Не хватает: Дата следующего контакта, Цель"
    assert task.params.description == "Дата следующего контакта"


def test_a_completed_contact_and_a_planned_one() -> None:
    p = pack("""
- id: after-contact
  when:
    event: activity.completed
    if: {all: [{activity: {type: [call, meeting]}}, {activity_planned: false}]}
  then: [{add_comment: {text: x}}]
""")
    call = {"type": "call", "direction": "outgoing", "completed": True}
    later = datetime(2025, 10, 23, 10, 0, tzinfo=MSK)
    assert fired(p, deal(), deal(), type="activity.updated", facts=Facts(activity=call))
    assert not fired(
        p, deal(), deal(), type="activity.updated", facts=Facts(activity=call, planned_at=later)
    )
    open_call = {**call, "completed": False}
    assert not fired(p, deal(), deal(), type="activity.updated", facts=Facts(activity=open_call))


def test_history_per_client() -> None:
    p = pack("""
- id: involvement
  when: {if: {changes: offer_change_requested_at, count: {gte: 3}, per: client}}
  then: [{add_comment: {text: x}}]
""")
    per_client = Facts(
        history={"offer_change_requested_at": 1}, client_history={"offer_change_requested_at": 3}
    )
    assert fired(p, deal(), deal(), facts=per_client) == ["involvement"]
    assert fired(p, deal(), deal(), facts=Facts(history={"offer_change_requested_at": 3})) == []
