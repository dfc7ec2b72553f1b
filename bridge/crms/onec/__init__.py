"""1C:Enterprise: the declaration the registry reads (connector, ingress, mapping, sandbox).

1C (УТ, УНФ, Розница, КА) reaches the bridge through its standard "exchange with site"
(CommerceML 2, ``type=sale``): 1C is the HTTP client, the bridge plays the site at
``/hooks/onec/<tenant>``. 1C uploads its orders as CommerceML files; the bridge keeps them,
turns each change into an event, and hands the orders it changed back when 1C asks
(``mode=query``). Optionally the bridge writes back at once through 1C's standard OData
interface. 1C has no tasks: a tenant names another tenant in ``tasks_in`` for them.
P: = https://v8.1c.ru/tekhnologii/obmen-dannymi-i-integratsiya/standarty-i-formaty/protokol-obmena-s-saytom/
(quoted, with the implementations that follow it, in shared/reference/onec.md).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bridge.crms.base import CRM, Check, Chore, ConnectionSettings, RecordKind

ACTIONS = frozenset({"add_comment", "update_fields"})
"""What the exchange (or OData) can carry back into a 1C order: its comment and requisites."""

SILENCE_CHECK_SECONDS = 300
"""How often ``bridge cron`` looks whether 1C still exchanges."""

COOKIE = "BRIDGE1C"
"""The name of the cookie ``checkauth`` hands 1C (its value is the session token)."""


class Limits(BaseModel):
    """What one exchange may upload; over a limit 1C is answered ``failure`` with the reason."""

    model_config = ConfigDict(extra="forbid")

    file_limit: int = Field(
        default=1024 * 1024, gt=0, description="bytes per POST, advertised to 1C at init"
    )
    max_upload: int = Field(default=64 * 1024 * 1024, gt=0, description="bytes of one file")
    max_members: int = Field(default=32, gt=0, description="files in one zip")
    max_unpacked: int = Field(
        default=256 * 1024 * 1024, gt=0, description="bytes of a zip's files, unpacked"
    )
    max_ratio: int = Field(
        default=100, gt=0, description="unpacked size / packed size of one zip member"
    )


class ODataSettings(BaseModel):
    """1C's standard OData interface, for writing back at once (optional)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="…/odata/standard.odata of the published infobase")
    login: str = Field(
        description="the 1C user the bridge writes as (its password: "
        "odata_password_env of the connection)"
    )
    entity: str = Field(default="Document_ЗаказКлиента", description="the orders' entity set")
    key: str = Field(
        default="Ид", description="the order's attribute that holds its Ref_Key (GUID)"
    )
    comment: str = Field(default="Комментарий", description="the property of the comment")
    fields: dict[str, str] = Field(
        default_factory=dict, description="canonical field -> OData property, for update_fields"
    )
    # reconciliation (reconcile_every of the tenant): orders read back through OData
    status: str = Field(default="Статус", description="the property holding the order's status")
    statuses: dict[str, str] = Field(
        default_factory=dict,
        description="status as OData gives it (an enumeration's name: ВРаботе) -> as the "
        "exchange writes it (В работе); unlisted ones are taken as they are",
    )
    read: dict[str, str] = Field(
        default_factory=dict,
        description="OData property -> the requisite of the exchange it stands for "
        "(Менеджер____Presentation: Менеджер, Отменен: Отменен)",
    )
    amount: str = Field(default="СуммаДокумента", description="the property of the order's sum")
    modified: str | None = Field(
        default=None,
        description="a property holding the time of the order's last change, if the "
        "configuration has one; else orders dated within window_days are read",
    )
    window_days: int = Field(
        default=30, ge=1, description="without `modified`: how far back orders are read"
    )
    page: int = Field(default=500, ge=1, le=5000, description="orders per OData request")


class OneCSettings(ConnectionSettings):
    """The ``connection`` block of a 1C tenant (its pace and timeout: the OData client's)."""

    @model_validator(mode="after")
    def _odata_password(self) -> OneCSettings:
        if self.odata is not None and not self.odata_password_env:
            raise ValueError("odata needs odata_password_env (the env var of its password)")
        return self

    login: str = Field(description="the login 1C's exchange node uses (HTTP Basic)")
    password_env: str = Field(description="env var: its password")
    store: str = Field(
        default="var/onec",
        description="folder of uploads and the order store, relative to the config file; the "
        "web process and the workers must share it",
    )
    encoding: Literal["windows-1251", "utf-8", "utf-8-sig"] = Field(
        default="windows-1251", description="of the answers to 1C and of the orders in query"
    )
    schema_version: str = Field(default="2.05", description="ВерсияСхемы of what query sends")
    container: bool = Field(
        default=False, description="wrap query's orders in <Контейнер> (CommerceML 3.x)"
    )
    zip: bool = Field(default=True, description="tell 1C it may send zip files")
    session_ttl: int = Field(default=3600, gt=0, description="seconds a checkauth cookie lives")
    max_failures: int = Field(
        default=5, ge=1, description="wrong passwords at checkauth before a lock-out"
    )
    lockout_minutes: int = Field(
        default=15, ge=1, description="how long checkauth refuses a locked-out login"
    )
    limits: Limits = Field(default_factory=Limits)
    silent_minutes: int | None = Field(
        default=180,
        ge=1,
        description="minutes without an exchange session before an alert (null: never)",
    )
    keep_closed_days: int = Field(
        default=90,
        ge=1,
        description="days the store keeps a closed order 1C no longer changes, and an upload",
    )
    status: str = Field(
        default="Статус заказа", description="the requisite holding the order's status"
    )
    flags: dict[str, str] = Field(
        default_factory=lambda: {"Отменен": "Отменен", "ПометкаУдаления": "Удален"},
        description="requisite -> the status it means when true (1C and Bitrix keep "
        "cancellation as a flag beside the status)",
    )
    user_emails: dict[str, str] = Field(
        default_factory=dict, description="user alias or id -> e-mail (1C has no user API)"
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="import-1c of CSV/XLSX: column header -> order attribute or requisite",
    )
    odata: ODataSettings | None = Field(default=None, description="write back through OData")
    odata_password_env: str | None = Field(
        default=None, description="env var: the password of odata.login"
    )
    requests_per_second: float = Field(default=5.0, gt=0, description="OData requests a second")
    burst: int = Field(default=5, ge=1, description="OData requests back to back")
    timeout: float = Field(default=20.0, gt=0, description="seconds per OData request")

    def address(self) -> str:
        """The published infobase's OData (the exchange needs none: 1C is its client)."""
        return f"odata.url ({self.odata.url})" if self.odata else f"the store folder {self.store}"

    def credentials(self) -> str:
        """The OData user, or the exchange node's login."""
        if self.odata:
            return f"the OData user {self.odata.login} and ${self.odata_password_env}"
        return f"the exchange node's login {self.login} and ${self.password_env}"

    def missing(self) -> str:
        """Without OData the bridge knows only the orders 1C has uploaded to it."""
        if self.odata:
            return super().missing()
        return (
            "check the id: without OData the bridge knows only the orders 1C has uploaded in "
            "an exchange (a new order comes with the next one; `bridge import-1c FILE` loads "
            "an export)"
        )


class OneC(CRM):
    """1C:Enterprise trade configurations: customer orders, through the exchange with site."""

    name: ClassVar[str] = "onec"
    title: ClassVar[str] = "1C"
    docs_url: ClassVar[str] = (
        "https://v8.1c.ru/tekhnologii/obmen-dannymi-i-integratsiya/standarty-i-formaty/"
        "protokol-obmena-s-saytom/"
    )
    settings: ClassVar[type[ConnectionSettings]] = OneCSettings
    record_kinds: ClassVar[tuple[RecordKind, ...]] = (RecordKind("order", "заказ", ACTIONS),)
    # the cookie checkauth hands out is the exchange's credential while it lives
    secret_patterns: ClassVar[tuple[str, ...]] = (
        rf"({COOKIE}=)([^;\s&]+)",
        r"([?&]sessid=)([^&\s]+)",
    )
    checks: ClassVar[tuple[Check, ...]] = (
        # 1C's exchange runs on a schedule: silence means it broke (onec.md §6.17)
        Check("silence", SILENCE_CHECK_SECONDS, "1C stopped exchanging with the bridge"),
    )
    chores: ClassVar[tuple[Chore, ...]] = (
        Chore("prune", 3600, "forget closed orders and uploads older than keep_closed_days"),
    )
    commands: ClassVar[tuple[str, ...]] = ("bridge.crms.onec.commands:import_1c",)
    connector: ClassVar[str] = "bridge.crms.onec.connector:OneCConnector"
    ingress: ClassVar[str] = "bridge.crms.onec.ingress:bp"
    sandbox: ClassVar[str | None] = "bridge.crms.onec.sandbox.stand:OneCStand"
