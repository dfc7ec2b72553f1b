"""`bridge validate` reads every template before it runs: a name the record will not have (a
field the mapping lacks, a look-up the rule does not make) is an error with file:line and the
names that do exist, in rule texts and in e-mail templates alike."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bridge.calendar import BusinessCalendar
from bridge.config import parse_hours
from bridge.models import Event, Record
from bridge.regulations.engine import Context, evaluate
from bridge.regulations.pack import Pack
from bridge.regulations.text import RULE_VARIABLES
from tests.test_validate import config_dir, line_of, replace, validate

__all__ = ["config_dir"]  # the fixture, used by name

TITLE = '          title: "Укажите причину отказа: {{ record.title }}"'
"""The first rule's task title in Remarka's pack (a deal rule)."""


def test_a_field_the_mapping_lacks_is_named_with_the_fields_that_exist(config_dir: Path) -> None:
    pack = config_dir / "regulations" / "remarka.yaml"
    replace(pack, TITLE, '          title: "Отказ: {{ record.fields.refusal_reasn }}"')
    code, out = validate(config_dir)
    assert code == 1
    line = line_of(pack, "refusal_reasn")
    assert (
        f"{pack}:{line}: rules[0].then[0].create_task.title: record.fields.refusal_reasn: the "
        "mapping for deal has no field 'refusal_reasn' (did you mean 'refusal_reason'?); known: "
    ) in out
    known = out.split("known: ")[1].splitlines()[0].split(", ")
    assert {"refusal_reason", "next_contact_at", "next_contact_goal"} <= set(known)


def test_a_standard_field_under_fields_says_where_it_is(config_dir: Path) -> None:
    pack = config_dir / "regulations" / "remarka.yaml"
    replace(pack, TITLE, '          title: "Сумма: {{ record.fields.amount }}"')
    code, out = validate(config_dir)
    assert code == 1
    line = line_of(pack, "record.fields.amount")
    assert (
        f"{pack}:{line}: rules[0].then[0].create_task.title: record.fields.amount: amount is a "
        "standard field of every record: write record.amount"
    ) in out


def test_changing_the_record_is_refused_before_it_runs(config_dir: Path) -> None:
    pack = config_dir / "regulations" / "remarka.yaml"
    replace(pack, TITLE, "          title: \"{{ record.fields.update({'source': 'x'}) }}\"")
    code, out = validate(config_dir)
    assert code == 1
    assert (
        f"{pack}:{line_of(pack, 'update(')}: rules[0].then[0].create_task.title: "
        "record.fields.update: a template cannot change a record (update is refused); read "
        "fields only"
    ) in out


def test_a_typo_in_a_branch_rarely_taken_is_found_too(config_dir: Path) -> None:
    pack = config_dir / "regulations" / "remarka.yaml"
    text = (
        "          title: |-\n"
        "            Отказ {{ record.title }}\n"
        "            {% if record.amount and record.amount > 10**6 %}{{ record.resposible }}"
        "{% endif %}"
    )
    replace(pack, TITLE, text)
    code, out = validate(config_dir)
    assert code == 1
    line = line_of(pack, "title: |-")
    assert (
        f"{pack}:{line}: rules[0].then[0].create_task.title: template line 2: "
        "record.resposible: a record has no 'resposible' (did you mean 'responsible'?)"
    ) in out


def test_unknown_variables_look_ups_constants_and_syntax(config_dir: Path) -> None:
    pack = config_dir / "regulations" / "remarka.yaml"
    replace(
        pack, TITLE, '          title: "{{ reocrd.title }} {{ lookups.orders }} {{ constants.x }}"'
    )
    replace(
        pack,
        "          deadline: 2 working hours\n",
        "          description: '{{ now'\n          deadline: 2 working hours\n",
    )
    code, out = validate(config_dir)
    assert code == 1
    where = f"{pack}:{line_of(pack, 'reocrd')}: rules[0].then[0].create_task.title"
    assert (
        f"{where}: unknown name 'reocrd' (did you mean 'record'?); a template here may use: "
        f"{', '.join(sorted(RULE_VARIABLES))}"
    ) in out
    assert f"{where}: lookups.orders: the rule has no look-up 'orders'; known: none" in out
    assert f"{where}: constants.x: no constant 'x'" in out
    line = line_of(pack, "'{{ now'")
    assert (
        f"{pack}:{line}: rules[0].then[0].create_task.description: template syntax error: "
        "unexpected end of template"
    ) in out


def test_a_look_up_s_finds_are_checked_against_their_own_kind(config_dir: Path) -> None:
    pack = config_dir / "regulations" / "monuments.yaml"
    replace(
        pack,
        "{{ lookups.same_monument_leads[0].id }}{% endif %}.",
        "{{ lookups.same_monument_leads[0].fields.monument_fr }}{% endif %}.",
    )
    code, out = validate(config_dir)
    assert code == 1
    assert (
        "create_task.description: lookups.same_monument_leads[0].fields.monument_fr: the mapping "
        "has no field 'monument_fr' (did you mean 'monument_for'?)"
    ) in out


def test_a_template_that_guards_a_name_passes(config_dir: Path) -> None:
    pack = config_dir / "regulations" / "remarka.yaml"
    replace(
        pack,
        TITLE,
        "          title: \"{{ record.fields.extra | default('') }}"
        "{% if agreements is defined %}{{ agreements }}{% endif %}"
        '{% for d in lookups.values() %}{{ d.anything }}{% endfor %}"',
    )
    code, out = validate(config_dir)
    assert code == 0, out


def test_an_email_template_names_its_file_and_line(config_dir: Path) -> None:
    template = config_dir / "templates" / "email" / "monument_offer.txt"
    replace(template, "{{ record.fields.offer_terms }}", "{{ record.fields.offer_term }}")
    replace(template, "{{ client_name }}", "{{ clinet_name }}")
    code, out = validate(config_dir)
    assert code == 1
    assert (
        f"{template}:{line_of(template, 'offer_term }}')}: record.fields.offer_term: the mapping "
        "for lead has no field 'offer_term' (did you mean 'offer_terms'?); known: "
    ) in out
    assert (
        f"{template}:{line_of(template, 'clinet_name')}: unknown name 'clinet_name' (did you mean "
        "'client_name'?); a template here may use: client_name, manager_email, manager_name, "
        "record, signature, to"
    ) in out


def test_an_email_subject_and_html_part_are_checked(config_dir: Path) -> None:
    folder = config_dir / "templates" / "email"
    replace(
        folder / "monument_offer.txt",
        "record.fields.portal_request_id }}",
        "record.fields.portal_request }}",
    )
    (folder / "monument_offer.html").write_text(
        "<p>{{ client_name }}</p>\n<p>{{ record.fields.offer_price | monye }}</p>\n",
        encoding="utf-8",
    )
    code, out = validate(config_dir)
    assert code == 1
    assert f"{folder / 'monument_offer.txt'}:1: record.fields.portal_request: the mapping" in out
    assert (
        f"{folder / 'monument_offer.html'}:2: template syntax error: No filter named 'monye'"
    ) in out


def test_every_name_validate_allows_is_there_at_run_time() -> None:
    texts = " ".join(
        f"{{{{ {name} is defined and {name} is not none }}}}" for name in RULE_VARIABLES
    )
    pack = Pack.model_validate(
        {"pack": "p", "rules": [{"id": "r", "then": [{"add_comment": {"text": texts}}]}]}
    )
    now = datetime(2025, 11, 14, 10, tzinfo=UTC)
    calendar = BusinessCalendar("Europe/Moscow", parse_hours({"mon-fri": "09:00-18:00"}))
    record = Record("deal", "1", "bitrix24", title="x")
    event = Event("t", "bitrix24", "record.updated", record.ref, now)
    plan = evaluate(event, record, record, pack.rules, Context(now=now, calendar=calendar))
    (action,) = plan.actions
    assert action.params.text == " ".join(["True"] * len(RULE_VARIABLES))  # type: ignore[union-attr]
