"""Constants and error bodies of the amoCRM sandbox.

Every shape here is quoted in /work/shared/reference/amocrm.md with the amoCRM page it comes
from; the page is repeated next to each constant.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

# https://www.amocrm.ru/developers/content/crm_platform/leads_pipelines: «В каждой воронке есть 3
# системных статуса … Успешно реализовано (ID = 142), Закрыто и не реализовано (ID = 143)».
WON, LOST = 142, 143
SYSTEM_STATUSES = ((WON, "Успешно реализовано"), (LOST, "Закрыто и не реализовано"))

# https://www.amocrm.ru/developers/content/crm_platform/tasks-api: standard task types 1 and 2.
TASK_TYPES = (
    {"id": 1, "name": "Связаться", "code": "FOLLOW_UP"},
    {"id": 2, "name": "Встреча", "code": "MEETING"},
)
TASK_ENTITY_TYPES = ("leads", "contacts", "companies", "customers")

# https://www.amocrm.ru/developers/content/crm_platform/events-and-notes («Типы примечаний»).
NOTE_TYPES = (
    "common",
    "call_in",
    "call_out",
    "service_message",
    "message_cashier",
    "geolocation",
    "sms_in",
    "sms_out",
    "extended_service_message",
    "attachment",
)

# Legacy numbers in webhook bodies (reference §1.4): element_type 2 = lead, note_type 4 = common.
LEGACY_ELEMENT_LEAD = 2
LEGACY_NOTE_TYPES = {"common": 4, "call_in": 10, "call_out": 11}

# https://www.amocrm.ru/developers/content/crm_platform/webhooks-api («Возможные события»):
# API setting code -> (entity key, action key) of the body.
HOOK_KEYS = {
    "add_lead": ("leads", "add"),
    "update_lead": ("leads", "update"),
    "status_lead": ("leads", "status"),
    "responsible_lead": ("leads", "responsible"),
    "note_lead": ("leads", "note"),
    "add_task": ("task", "add"),
    "update_task": ("task", "update"),
}

# Reference §0 / §3.1: 250 entities per request, 100 per events page.
MAX_LIMIT, MAX_EVENTS_LIMIT, DEFAULT_LIMIT = 250, 100, 50

# OAuth lifetimes (https://www.amocrm.ru/developers/content/oauth/oauth): code 20 min, refresh
# token 3 months.
CODE_TTL = 20 * 60
REFRESH_TTL = 90 * 86400

HAL_JSON = "application/hal+json"
PROBLEM_JSON = "application/problem+json"
OAUTH_PROBLEM = "https://developers.amocrm.ru/v3/errors/OAuthProblemJson"


class ApiError(Exception):
    """An error answer: status plus a problem+json body (or an HTML page when ``html``)."""

    def __init__(self, status: int, body: dict[str, Any] | str) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem(status: int, detail: str, **extra: Any) -> dict[str, Any]:
    """The common problem+json body, e.g. 401/402/429 of reference §3.3."""
    return {
        "title": _phrase(status),
        "type": f"https://httpstatus.es/{status}",
        "status": status,
        "detail": detail,
        **extra,
    }


def unauthorized() -> ApiError:
    """401 for a missing, expired or revoked token (reference §3.3, Kommo status-code page)."""
    return ApiError(401, problem(401, "Invalid user name or password"))


def too_many(retry_after: int) -> ApiError:
    """429 with ``retry_after`` as in the Kommo example (reference §3.2/§3.3)."""
    return ApiError(429, problem(429, "Too many requests", retry_after=retry_after))


def fault_body(status: int, retry_after: int) -> dict[str, Any] | str:
    """Default body of an injected fault; 403 is nginx's HTML page (amocrm-api-php#434)."""
    if status == 429:
        return too_many(retry_after).body
    if status == 403:
        return "<html><head><title>403 Forbidden</title></head><body>403 Forbidden</body></html>"
    if status == 402:
        return problem(402, "Payment required")
    return problem(status, _phrase(status))


def validation_error(failures: list[tuple[str, str, str, str]]) -> ApiError:
    """400 ``validation-errors`` (https://www.amocrm.ru/developers/content/crm_platform/error-codes).

    Args:
        failures: ``(request_id, code, path, detail)`` per problem, grouped here by request.
    """
    grouped: dict[str, list[dict[str, str]]] = {}
    for request_id, code, path, detail in failures:
        grouped.setdefault(request_id, []).append({"code": code, "path": path, "detail": detail})
    items = [{"request_id": rid, "errors": errs} for rid, errs in grouped.items()]
    body = problem(400, "Request validation failed")
    return ApiError(400, {"validation-errors": items, **body})


def invalid_body(errors: dict[str, str]) -> ApiError:
    """400 with ``errors`` by entity id (amocrm/amocrm-api-php#88, reference §2.2)."""
    return ApiError(400, {"errors": errors, **problem(400, "Invalid request body")})


def oauth_error(status: int, hint: str, detail: str) -> ApiError:
    """An OAuth endpoint error with ``hint`` (amocrm/amocrm-api-php#123, reference §2.11)."""
    body = {"hint": hint, "title": "Некорректный запрос", "type": OAUTH_PROBLEM}
    return ApiError(status, {**body, "status": status, "detail": detail})


# Symfony-style texts for the codes the reference names; amoCRM localises them anyway.
NOT_EXPECTED = ("FieldNotExpected", "This field was not expected.")
NOT_A_CHOICE = ("NotSupportedChoice", "The value you selected is not a valid choice.")
MISSING = ("FieldMissing", "This field is missing.")
WRONG_TYPE = ("InvalidType", "This value should be of another type.")
