"""The exchange protocol as 1C reads it, and the limits: what is refused is refused whole,
with the reason in 1C's words (``failure\\n<reason>``), journaled, and nothing of it imported.
Bombs and hostile names after shared/reference/onec.md §4."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime

import requests

from tests.onec_env import LOGIN, PASSWORD, TENANT, OneCBridge

BILLION_LAUGHS = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<КоммерческаяИнформация ВерсияСхемы="2.05"><Документ><Ид>1</Ид><Комментарий>&lol9;</Комментарий>
</Документ></КоммерческаяИнформация>""".encode()


def order(onec: OneCBridge) -> None:
    onec.onec.add_order("ПТ-7", datetime(2025, 10, 30, 11, 0), status="Принят", cancelled=True)


def nothing_imported(onec: OneCBridge) -> None:
    """No order kept, no event queued, nothing received left behind."""
    conn = onec.runtime.connector(onec.runtime.tenant(TENANT))
    assert list(conn.store.orders()) == []
    left = (conn.store.root / "incoming").rglob("*")
    assert [p.name for p in left if p.is_file() and p.name != ".refused"] == []
    events = onec.runtime.journal.recent(50)
    assert [e["event"].status for e in events if e["event"].status != "rejected"] == []


def refusals(onec: OneCBridge) -> list[str]:
    return [e["event"].reason for e in onec.runtime.journal.recent(50)]


def zipped(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_checkauth_refuses_a_wrong_password_and_the_steps_need_the_cookie(
    onec: OneCBridge,
) -> None:
    wrong = onec.onec.exchange(onec.hook_url, LOGIN, "guess")
    assert wrong.answers("checkauth") == ["failure\nневерный логин или пароль обмена"]
    bare = requests.get(onec.hook_url, params={"type": "sale", "mode": "init"}, timeout=10)
    expected = "failure\nнет сессии обмена: начните с mode=checkauth"
    assert (bare.status_code, bare.text) == (200, expected)
    assert bare.headers["Content-Type"] == "text/plain; charset=windows-1251"
    assert any("неверный логин" in reason for reason in refusals(onec))


def test_sessid_stands_for_the_cookie_as_newer_modules_send_it(onec: OneCBridge) -> None:
    auth = requests.get(
        onec.hook_url, params={"type": "sale", "mode": "checkauth"}, auth=(LOGIN, PASSWORD)
    )
    token = auth.text.split("\n")[2]
    assert auth.text.split("\n")[3] == f"sessid={token}"
    init = requests.get(
        onec.hook_url, params={"type": "sale", "mode": "init", "sessid": token, "version": "2.08"}
    )
    assert init.text == "zip=yes\nfile_limit=1048576"


def test_an_xml_bomb_is_refused_and_nothing_is_imported(onec: OneCBridge) -> None:
    log = onec.exchange(file=BILLION_LAUGHS)
    assert log.answers("import") == [
        "failure\norders.xml: DTD и сущности (<!DOCTYPE, <!ENTITY) не принимаются"
    ]
    nothing_imported(onec)
    assert any("DTD" in reason for reason in refusals(onec))


def test_a_zip_bomb_is_refused_and_nothing_is_imported(onec: OneCBridge) -> None:
    bomb = zipped({"orders.xml": b"<?xml version='1.0'?>" + b" " * 50_000_000})
    assert len(bomb) < 100_000
    log = onec.exchange(file=bomb, filename="orders.zip")
    [answer] = log.answers("import")
    assert answer == "failure\norders.xml: сжат более чем в 100 раз (zip-бомба?)"
    nothing_imported(onec)


def test_too_many_members_and_a_climbing_member_are_refused(onec: OneCBridge) -> None:
    many = zipped({f"orders-{i}.xml": b"<a/>" for i in range(40)})
    assert onec.exchange(file=many, filename="o.zip").answers("import") == [
        "failure\nв zip 40 файлов, допустимо 32"
    ]
    climbing = zipped({"../../orders.xml": b"<a/>"})
    assert onec.exchange(file=climbing, filename="o.zip").answers("import") == [
        "failure\nфайл '../../orders.xml' в zip выходит за папку обмена"
    ]
    nothing_imported(onec)


def test_a_path_traversal_file_name_is_refused(onec: OneCBridge) -> None:
    order(onec)
    log = onec.exchange(filename="..\\..\\bridge.yaml")
    [answer] = log.answers("file")
    assert answer == "failure\nимя файла '..\\\\..\\\\bridge.yaml' выходит за папку обмена (..)"
    nothing_imported(onec)


def test_a_windows_path_is_reduced_to_its_name(onec: OneCBridge) -> None:
    order(onec)
    log = onec.exchange(filename="C:\\v8_8789_c.xml")
    assert log.ok
    conn = onec.runtime.connector(onec.runtime.tenant(TENANT))
    assert [k.order.number for k in conn.store.orders()] == ["ПТ-7"]
    [batch] = [e for e in onec.runtime.journal.recent(20) if e["event"].type == "batch"]
    assert batch["event"].payload["file"] == "v8_8789_c.xml"


def test_an_upload_over_the_size_limit_is_dropped_whole(make_onec) -> None:
    onec = make_onec(limits={"max_upload": 2000, "file_limit": 500})
    for i in range(10):
        onec.onec.add_order(f"ПТ-{i}", datetime(2025, 10, 30, 11, 0), comment="x" * 100)
    log = onec.exchange()
    assert log.answers("init") == ["zip=yes\nfile_limit=500"]
    assert log.answers("file")[-1] == "failure\nфайл orders.xml больше 2000 байт"
    nothing_imported(onec)


def test_a_chunk_over_file_limit_is_refused(make_onec) -> None:
    onec = make_onec(limits={"file_limit": 500})
    order(onec)
    log = onec.exchange(chunk=4000)
    assert log.answers("file") == ["failure\nчасть файла orders.xml больше file_limit=500 байт"]
    nothing_imported(onec)


def test_a_file_that_is_no_commerceml_fails_in_the_worker_and_imports_nothing(
    onec: OneCBridge,
) -> None:
    log = onec.exchange(file=b"<?xml version='1.0'?><html><body>404</body></html>")
    assert log.answers("import") == ["success"]  # kept and acknowledged; read by the worker
    [batch] = [e for e in onec.runtime.journal.recent(20) if e["event"].type == "batch"]
    assert batch["event"].status == "failed"
    assert "the root element is <html>, not <КоммерческаяИнформация>" in batch["event"].reason
    conn = onec.runtime.connector(onec.runtime.tenant(TENANT))
    assert list(conn.store.orders()) == []


def test_a_catalog_exchange_is_told_the_bridge_takes_orders(onec: OneCBridge) -> None:
    auth = requests.get(
        onec.hook_url, params={"type": "catalog", "mode": "checkauth"}, auth=(LOGIN, PASSWORD)
    )
    assert auth.text == "failure\nмост принимает только заказы (type=sale)"


def test_after_a_refusal_the_session_takes_nothing_until_init(make_onec) -> None:
    onec = make_onec(limits={"file_limit": 500})
    http = requests.Session()
    step = {"type": "sale"}
    auth = http.get(onec.hook_url, params=step | {"mode": "checkauth"}, auth=(LOGIN, PASSWORD))
    http.cookies.set("BRIDGE1C", auth.text.split("\n")[2])
    send = step | {"mode": "file", "filename": "orders.xml"}
    assert http.post(onec.hook_url, params=send, data=b"x" * 600).text.startswith("failure\n")
    later = http.post(onec.hook_url, params=send, data=b"<a/>")
    assert later.text == "failure\nобмен прерван после отказа: начните заново (mode=init)"
    assert http.get(onec.hook_url, params=step | {"mode": "init"}).text.startswith("zip=yes")
    assert http.post(onec.hook_url, params=send, data=b"<a/>").text == "success"


def test_repeated_wrong_passwords_lock_checkauth_out_for_a_while(make_onec, redis_conn) -> None:
    # onec.md §4: "Rate-limit checkauth"; 1C reads the body: failure and the reason
    onec = make_onec(max_failures=3, lockout_minutes=20)
    onec.onec.add_order("ПТ-8", datetime(2025, 10, 30, 11, 0), status="Принят")
    wrong = [onec.onec.exchange(onec.hook_url, LOGIN, "guess") for _ in range(3)]
    refused = "failure\nневерный логин или пароль обмена"
    assert [w.answers("checkauth") for w in wrong] == [[refused]] * 3

    locked = onec.exchange()  # the right password, within the window
    reason = "failure\nслишком много неверных паролей: вход закрыт на 20 мин"
    assert locked.answers("checkauth") == [reason]
    assert [s.mode for s in locked.steps] == ["checkauth"]  # 1C stops there
    conn = onec.runtime.connector(onec.runtime.tenant(TENANT))
    assert list(conn.store.orders()) == []
    counters = redis_conn.keys(f"bridge:lockout:onec:{TENANT}:*")
    assert len(counters) == 2  # the login's and the address's
    assert all(19 * 60 < redis_conn.ttl(key) <= 20 * 60 for key in counters)

    redis_conn.delete(*counters)  # as their expiry does when the window ends
    assert onec.exchange().ok
    assert [k.order.number for k in conn.store.orders()] == ["ПТ-8"]


def test_a_right_password_clears_the_logins_count(make_onec, redis_conn) -> None:
    onec = make_onec(max_failures=3)
    for _ in range(2):
        onec.onec.exchange(onec.hook_url, LOGIN, "guess")
    assert onec.exchange().ok
    # the address's count stays (a guesser's); a new address, the same login:
    redis_conn.delete(*redis_conn.keys(f"bridge:lockout:onec:{TENANT}:addr:*"))
    for _ in range(2):
        onec.onec.exchange(onec.hook_url, LOGIN, "guess")
    assert onec.exchange().answers("checkauth")[0].startswith("success\n")
