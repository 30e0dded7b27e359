"""The board and error pages as small, self-contained HTML (no external assets; every value escaped)."""

from __future__ import annotations

from html import escape
from typing import Any

REFRESH_SECONDS = 30

STYLE = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:16px;color:#1f2328;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 6px}
.muted{color:#656d76}.small{font-size:12px}
table{border-collapse:collapse;width:100%;margin-top:6px}
th,td{border-bottom:1px solid #d0d7de;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600;font-size:13px}
.env{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;white-space:nowrap}
.env-blue{background:#ddf4ff;color:#0550ae;border:1px solid #54aeff}
.env-green{background:#dafbe1;color:#116329;border:1px solid #4ac26b}
.env-split{background:#fff8c5;color:#7d4e00;border:1px solid #d4a72c}
.env-none{background:#f6f8fa;color:#656d76;border:1px dashed #afb8c1}
.v{display:block;margin:1px 0}
.st{display:inline-block;min-width:3.2em;text-align:center;border-radius:4px;padding:0 4px;font-size:12px;
font-weight:600}
.st-pass{background:#dafbe1;color:#116329}.st-fail{background:#ffebe9;color:#a40e26}
.st-other{background:#fff8c5;color:#7d4e00}
.run-success{color:#116329}.run-failed{color:#a40e26}.run-running,.run-queued{color:#7d4e00}
.errors{background:#ffebe9;border:1px solid #ff8182;padding:8px;border-radius:6px;white-space:pre-wrap}
.wave-row td{background:#f6f8fa}
"""

# Links to Airflow pages: inside the UI's iframe (sandbox "allow-scripts allow-same-origin") a page
# may not navigate the top window, but it may push the URL into the top window's history and tell
# the UI's router; anything that fails falls back to an ordinary link.
SCRIPT = """
document.addEventListener("click", function (e) {
  var a = e.target.closest && e.target.closest("a[data-airflow]");
  if (!a || window.top === window || e.ctrlKey || e.metaKey || e.shiftKey) return;
  try {
    var h = window.top.history, s = h.state || {};
    h.pushState({usr: null, key: Math.random().toString(36).slice(2, 10), idx: (s.idx || 0) + 1}, "",
                a.getAttribute("href"));
    window.top.dispatchEvent(new PopStateEvent("popstate", {state: h.state}));
    e.preventDefault();
  } catch (err) { /* ordinary navigation inside the frame */ }
});
setTimeout(function () { location.reload(); }, %d);
""" % (REFRESH_SECONDS * 1000)


def page(title: str, body: str, *, refresh: bool = False) -> str:
    script = f"<script>{SCRIPT}</script>" if refresh else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{STYLE}</style>'
            f"</head><body>{body}{script}</body></html>")


def message_page(title: str, message: str) -> str:
    return page(title, f"<h1>{escape(title)}</h1><p>{escape(message)}</p>")


def _env(svc: dict[str, Any]) -> str:
    cls = f"env-{svc['env']}" if svc["started"] else "env-none"
    return f'<span class="env {cls}">{escape(svc["where"])}</span>'


def _status(status: str) -> str:
    cls = {"pass": "st-pass", "fail": "st-fail"}.get(status, "st-other")
    return f'<span class="st {cls}">{escape(status)}</span>'


def latest_per_gate(verdicts: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int]]:
    """The last verdict of each gate (a gate repeats at every traffic step) and how often it ran."""
    last: dict[tuple[Any, Any], dict[str, Any]] = {}
    count: dict[tuple[Any, Any], int] = {}
    for v in verdicts:
        key = (v.get("kind"), v["gate"])
        last.pop(key, None)  # keep the order of the latest occurrence
        last[key] = v
        count[key] = count.get(key, 0) + 1
    return [(v, count[k]) for k, v in last.items()]


def _verdicts(verdicts: list[dict[str, Any]]) -> str:
    if not verdicts:
        return '<span class="muted">–</span>'
    out = []
    for v, n in latest_per_gate(verdicts):
        where = v["task_id"].rsplit(".", 1)[0]
        more = f" (last of {n} verdicts in this run)" if n > 1 else ""
        reason = v["reason"] if len(v["reason"]) <= 160 else v["reason"][:157] + "…"
        out.append(f'<span class="v" title="{escape(v["task_id"])}{escape(more)}">{_status(v["status"])} '
                   f'<b>{escape(v["gate"])}</b> <span class="muted small">{escape(where)}</span> '
                   f"{escape(reason)}</span>")
    return "".join(out)


def _run_link(run: dict[str, Any] | None) -> str:
    if run is None:
        return '<span class="muted">no run yet</span>'
    state = run["state"] or "?"
    return (f'<a data-airflow href="{escape(run["url"])}" title="{escape(run["run_id"])}">latest run</a> '
            f'<span class="run-{escape(state)}">{escape(state)}</span>')


def _report_link(run: dict[str, Any] | None) -> str:
    if run is None:
        return ""
    return f'<a href="{escape(run["report_url"])}">report</a>'


def board_page(board: dict[str, Any]) -> str:
    parts = ['<h1>Migration board</h1>',
             f'<p class="muted small">Where each service runs (its asset\'s latest event) and the gate verdicts '
             f'of its wave\'s latest run. Generated {escape(board["generated_at"])}; refreshes every '
             f'{REFRESH_SECONDS} s.</p>']
    if board["spec_errors"]:
        parts.append('<div class="errors"><b>Wave specs that did not load</b>\n'
                     + "\n".join(escape(e) for e in board["spec_errors"]) + "</div>")
    if not board["waves"]:
        parts.append('<p class="muted">No waves to show (none defined, or none you may read).</p>')
    for wave in board["waves"]:
        run = wave["latest_run"]
        done = wave["completed"]
        parts.append(
            f'<h2>Wave {escape(wave["wave"])} <span class="muted small">DAG {escape(wave["dag_id"])} · owner '
            f'{escape(wave["owner"])}{" · " + escape(wave["description"]) if wave["description"] else ""}'
            "</span></h2>"
            f'<div class="small">{_run_link(run)} {_report_link(run)}'
            + (f' · <span class="muted">completed {escape(done["at"])}</span>' if done else "") + "</div>")
        parts.append("<table><thead><tr><th>service</th><th>exposure</th><th>runs on</th><th>green weight</th>"
                     "<th>last gate verdicts</th><th>since</th></tr></thead><tbody>")
        for svc in wave["services"]:
            weight = "–" if svc["weight"] is None else f'{svc["weight"]} %'
            since = escape(svc["since"] or "")
            if svc["by_run_url"]:
                label = "the latest run" if svc["by_run_url"] == svc["run_url"] else f"run {svc['by_run']}"
                since += (f' by <a data-airflow href="{escape(svc["by_run_url"])}" title="{escape(svc["by_run"])}">'
                          f"{escape(label)}</a>")
            parts.append(
                f'<tr><td><b>{escape(svc["service"])}</b></td><td>{escape(svc["exposure"])}</td>'
                f"<td>{_env(svc)}</td><td>{escape(weight)}</td><td>{_verdicts(svc['verdicts'])}</td>"
                f'<td class="small muted">{since}</td></tr>')
        parts.append(f'<tr class="wave-row"><td colspan="4"><i>wave-level gates</i></td>'
                     f'<td colspan="2">{_verdicts(wave["verdicts"])}</td></tr>')
        parts.append("</tbody></table>")
    return page("Migration board", "".join(parts), refresh=True)


def markdown_page(title: str, markdown: str, note: str) -> str:
    """A report.md shown as text, for runs whose report.html does not exist."""
    return page(title, f'<p class="muted small">{escape(note)}</p><pre style="white-space:pre-wrap">'
                       f"{escape(markdown)}</pre>")
