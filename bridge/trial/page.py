"""The small local page of ``bridge try``: a line to play, and what the bridge wrote back.

Served beside the bridge's webhooks on loopback (``/try``); the same words as the command
line. Texts come from the tenant's files and the sandbox, so the template escapes them all.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template_string, request, url_for
from flask.typing import ResponseReturnValue

from bridge.email import as_text
from bridge.trial.commands import HELP, play
from bridge.trial.session import Trial

PAGE = """<!doctype html>
<html lang="ru"><head><meta charset="utf-8"><title>bridge try {{ name }}</title>
<style>
 body { font: 15px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222 }
 input[name=line] { width: 40em; font: inherit; padding: .3em }
 pre { background: #f4f4f4; padding: .6em; white-space: pre-wrap }
 table { border-collapse: collapse; width: 100% } td, th { border-bottom: 1px solid #ddd;
 padding: .25em .5em; text-align: left; vertical-align: top } h2 { margin-top: 1.5em }
</style></head><body>
<h1>{{ name }} on the {{ crm }} sandbox</h1>
<p>Now: <b id="now">{{ now }}</b></p>
<form method="post"><input name="line" autofocus list="examples"
 placeholder='new deal "Котёл для дачи" amount=650000'>
 <button>Play</button></form>
<datalist id="examples">{% for e in examples %}<option value="{{ e }}">{% endfor %}</datalist>
{% if last %}<h2>{{ last.line }}</h2><pre id="output">{{ last.output }}</pre>{% endif %}
<h2>Records</h2><table id="records">
{% for r in records %}<tr><td>{{ r.ref }}</td><td>{{ r.title }}</td><td>{{ r.stage }}</td>
<td>user {{ r.responsible }}</td></tr>{% endfor %}</table>
<h2>Tasks</h2><table id="tasks">
{% for t in tasks %}<tr><td>{{ t.record }}</td><td>{{ t.text }}</td>
<td>user {{ t.responsible }}</td><td>{{ t.deadline }}</td></tr>{% endfor %}</table>
<h2>Comments</h2><table id="comments">
{% for c in comments %}<tr><td>{{ c.record }}</td><td>{{ c.text }}</td></tr>{% endfor %}</table>
{% if fields %}<h2>Fields set by the bridge</h2><table id="fields">
{% for f in fields %}<tr><td>{{ f.record }}</td><td>{{ f.text }}</td></tr>{% endfor %}</table>
{% endif %}
<h2>E-mails (outbox)</h2>
{% for m in emails %}<pre class="email">{{ m }}</pre>{% else %}<p>none</p>{% endfor %}
<h2>Sweeps</h2><ul>{% for s in schedules %}<li>{{ s }}</li>{% endfor %}</ul>
<h2>Help</h2><pre>{{ help }}</pre>
</body></html>"""

EXAMPLES = (
    'new deal "Котёл для дачи" amount=650000',
    "call on deal 1 outgoing completed",
    "clock +2 hours",
    "clock monday 10:00",
    "explain",
)


def blueprint(trial: Trial) -> Blueprint:
    """The page, bound to one trial."""
    bp = Blueprint("trial", __name__)
    last: dict[str, str] = {}

    @bp.get("/try")
    def page() -> ResponseReturnValue:
        return render_template_string(PAGE, **_state(trial), last=last or None)

    @bp.post("/try")
    def run() -> ResponseReturnValue:
        line = request.form.get("line", "").strip()
        if line:
            last.update(line=line, output="\n".join(play(trial, line)))
        return redirect(url_for("trial.page"), code=303)

    return bp


def _state(trial: Trial) -> dict[str, Any]:
    with trial.lock:
        records = []
        for ref in trial.records:
            r = trial.record(ref)
            records.append(
                {
                    "ref": trial.label(ref),
                    "title": r.title,
                    "stage": r.stage,
                    "responsible": r.responsible,
                }
            )
        return {
            "name": trial.name,
            "crm": trial.crm.title,
            "now": f"{trial.local():%A %d %B %Y %H:%M}",
            "records": records,
            "tasks": trial.tasks(),
            "comments": trial.comments(),
            "fields": trial.fields(),
            "emails": [as_text(m, masked=False) for m in trial.emails()],
            "schedules": trial.schedules(),
            "examples": EXAMPLES,
            "help": HELP,
        }
