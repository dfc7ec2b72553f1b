"""The bracket-key codec against literal bodies from the CRMs' documentation, both directions.

The sandboxes encode with the same module that ingress decodes with, so a test between them
only checks the codec against itself. Here each direction is checked against what the CRMs'
own pages show instead.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge import formdata

# Bitrix24, "What Comes to the Handler" (https://apidocs.bitrix24.com/api-reference/events/
# index.html, quoted in shared/reference/bitrix24.md §1.2): the JSON view of an outgoing
# webhook; the body itself is form-encoded by PHP's http_build_query, every value a string.
B24_EVENT = {
    "event": "ONCRMDEALADD",
    "event_handler_id": "975",
    "data": {"FIELDS": {"ID": "7405"}},
    "ts": "1766047124",
    "auth": {
        "domain": "some-domain.bitrix24.com",
        "client_endpoint": "https://some-domain.bitrix24.com/rest/",
        "server_endpoint": "https://oauth.bitrix.info/rest/",
        "member_id": "d897063e1ce7c5eb9f04b9751eef5915",
        "application_token": "jvh9y1ulvt2m6k5or90v9mg8nn32ozas",
    },
}
# the same event as PHP's http_build_query puts it on the wire (brackets percent-encoded,
# RFC 1738: '/' and ':' encoded too)
B24_WIRE = (
    "event=ONCRMDEALADD&event_handler_id=975&data%5BFIELDS%5D%5BID%5D=7405&ts=1766047124"
    "&auth%5Bdomain%5D=some-domain.bitrix24.com"
    "&auth%5Bclient_endpoint%5D=https%3A%2F%2Fsome-domain.bitrix24.com%2Frest%2F"
    "&auth%5Bserver_endpoint%5D=https%3A%2F%2Foauth.bitrix.info%2Frest%2F"
    "&auth%5Bmember_id%5D=d897063e1ce7c5eb9f04b9751eef5915"
    "&auth%5Bapplication_token%5D=jvh9y1ulvt2m6k5or90v9mg8nn32ozas"
)

# amoCRM, «Формат данных хуков» (https://www.amocrm.ru/developers/content/crm_platform/
# webhooks-format, «Пример массива», as rendered in shared/reference/amocrm.md §1.3): a lead's
# stage change, one pair per line, URL-decoded; numbered entities stay PHP maps ("0", "1").
AMO_LINES = """\
leads[status][0][id]=25399013
leads[status][0][name]=Поставка станков
leads[status][0][status_id]=143
leads[status][0][old_status_id]=7039101
leads[status][0][pipeline_id]=3104455
leads[status][0][price]=150000
leads[status][0][responsible_user_id]=504141
leads[status][0][last_modified]=1413554372
leads[status][0][tags][0][id]=80147
leads[status][0][tags][0][name]=повторное обращение
leads[status][0][custom_fields][0][id]=66339
leads[status][0][custom_fields][0][name]=Источник
leads[status][0][custom_fields][0][values][0][value]=Сайт
leads[status][0][custom_fields][0][values][0][enum]=139517
account[subdomain]=test
account[id]=7039099
account[_links][self]=https://test.amocrm.ru"""
AMO_EVENT = {
    "leads": {
        "status": {
            "0": {
                "id": "25399013",
                "name": "Поставка станков",
                "status_id": "143",
                "old_status_id": "7039101",
                "pipeline_id": "3104455",
                "price": "150000",
                "responsible_user_id": "504141",
                "last_modified": "1413554372",
                "tags": {"0": {"id": "80147", "name": "повторное обращение"}},
                "custom_fields": {
                    "0": {
                        "id": "66339",
                        "name": "Источник",
                        "values": {"0": {"value": "Сайт", "enum": "139517"}},
                    }
                },
            }
        }
    },
    "account": {"subdomain": "test", "id": "7039099", "_links": {"self": "https://test.amocrm.ru"}},
}

# Bitrix24 batch (https://apidocs.bitrix24.com/settings/how-to-call-rest-api/batch.html):
# each command is "method?query" with the method's params as http_build_query makes them
B24_BATCH_COMMAND = "crm.deal.update?id=5&fields%5BTITLE%5D=x&fields%5BUF_CRM_1%5D%5B0%5D=1"


def pairs(lines: str) -> list[tuple[str, str]]:
    return [tuple(line.split("=", 1)) for line in lines.splitlines()]  # type: ignore[misc]


def test_a_bitrix24_event_body_parses_into_the_documented_shape() -> None:
    assert formdata.parse_query(B24_WIRE) == B24_EVENT


def test_a_bitrix24_event_is_built_as_php_builds_it() -> None:
    assert formdata.build_query(B24_EVENT) == B24_WIRE


def test_an_amocrm_hook_parses_into_the_documented_shape() -> None:
    assert formdata.parse_pairs(pairs(AMO_LINES)) == AMO_EVENT


def test_an_amocrm_hook_is_built_back_into_the_documented_pairs() -> None:
    built = [
        (unquote(k), unquote(v))
        for k, _, v in (p.partition("=") for p in formdata.build_query(AMO_EVENT).split("&"))
    ]
    assert built == pairs(AMO_LINES)


def test_a_batch_command_carries_nested_params_as_the_docs_show() -> None:
    params = {"id": 5, "fields": {"TITLE": "x", "UF_CRM_1": [1]}}
    assert f"crm.deal.update?{formdata.build_query(params)}" == B24_BATCH_COMMAND
    method, _, query = B24_BATCH_COMMAND.partition("?")
    assert formdata.parse_query(query) == {
        "id": "5",
        "fields": {"TITLE": "x", "UF_CRM_1": {"0": "1"}},
    }


def test_values_go_out_as_php_sends_them() -> None:
    # PHP sends null as "" and booleans as 1/0 (fast-bitrix24 would send "None"/"True":
    # shared/reference/bitrix24.md, "Batch serialisation caveats")
    assert formdata.build_query({"a": None, "b": True, "c": False}) == "a=&b=1&c=0"


@pytest.mark.parametrize("key", ["data[FIELDS", "data]ID[", "[ID]", "data[a]b"])
def test_a_malformed_key_is_refused(key: str) -> None:
    with pytest.raises(formdata.FormKeyError):
        formdata.parse_pairs([(key, "1")])


# the characters a form body's decoding turns on, and some that are not ASCII
FORM_TEXT = st.text(alphabet="ab[]=&+%25%2B%5Bzé€ \x00", max_size=60)


@given(FORM_TEXT)
def test_a_body_decodes_as_the_standard_library_decodes_it(text: str) -> None:
    # the ingress decodes with a cache of its own (bridge/formdata.py pairs_of), so a body
    # must come out as urllib.parse.parse_qsl reads it, whatever its escapes, pluses or gaps
    assert list(formdata.pairs_of(text)) == parse_qsl(text, keep_blank_values=True)
    assert list(formdata.pairs_of(text)) == parse_qsl(text, keep_blank_values=True)  # cached
