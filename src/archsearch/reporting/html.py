"""A self-contained HTML report of a run or a strategy benchmark: figures as inline SVG, hover details and sortable
tables from a few lines of plain JavaScript written here, no network access when opened. Written to a temporary file
and renamed, so a reader never sees half a report; ``watch`` rewrites it while a search runs."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.outputs import safe_name, write_file
from archsearch.reporting.drawings import draw, pyplot
from archsearch.reporting.figures import Figure

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#24364f;color:#fff;padding:14px 28px}header h1{margin:0;font-size:21px}
header p{margin:4px 0 0;opacity:.85;font-size:13px}main{padding:6px 28px 40px;max-width:1180px}
section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;margin:16px 0;padding:12px 18px}
h2{font-size:17px;margin:4px 0 10px}figure{margin:6px 0}figcaption{font-size:12.5px;color:#555}
figure svg{max-width:100%;height:auto}table{border-collapse:collapse;font-size:13px}
td,th{border-bottom:1px solid #eee;padding:4px 9px;text-align:left;vertical-align:top}
th{background:#f2f4f7;position:sticky;top:0}table.sortable th{cursor:pointer;user-select:none}
table.sortable th:after{content:" \\2195";color:#aaa;font-size:11px}td.num{text-align:right;
font-variant-numeric:tabular-nums}
td.arch{font-family:ui-monospace,monospace;font-size:11.5px;max-width:430px;word-break:break-all}
td.draw svg{width:300px;height:auto}.note{color:#8a4b00}.kv td:first-child{color:#666;white-space:nowrap}
figure svg *{pointer-events:none}figure svg use{pointer-events:all}
#tip{position:fixed;pointer-events:none;background:#fff;border:1px solid #888;border-radius:4px;padding:6px 8px;
font-size:12px;box-shadow:0 2px 8px rgba(0,0,0,.2);display:none;max-width:460px;z-index:9}
#tip .arch{font-family:ui-monospace,monospace;word-break:break-all}
"""

SCRIPT = """
(function(){
const tip=document.getElementById('tip');
function fmt(v){return typeof v==='number'?(Math.abs(v)>=1e5?v.toExponential(3):+v.toFixed(4)):String(v);}
function line(cls,parts){const div=document.createElement('div');if(cls)div.className=cls;
 parts.forEach((p,i)=>{if(i===0&&parts.length>1){const b=document.createElement('b');b.textContent=p;div.append(b,' ');}
 else div.append(p);});return div;}
function show(d,e){tip.replaceChildren();for(const k in d){if(d[k]===null||d[k]===undefined)continue;
 tip.append(k==='arch'?line('arch',[String(d[k])]):line('',[String(k),fmt(d[k])]));}
 tip.style.display='block';move(e);}
function move(e){tip.style.left=Math.min(e.clientX+14,window.innerWidth-470)+'px';tip.style.top=(e.clientY+14)+'px';}
const POINTS=DATA.points,RECORDS=DATA.records;
for(const gid in POINTS){const g=document.getElementById(gid);if(!g)continue;
 let items=Array.from(g.querySelectorAll('use'));
 if(!items.length)items=Array.from(g.querySelectorAll('path')).filter(p=>!p.closest('defs'));
 items.forEach((el,i)=>{const d=RECORDS[POINTS[gid][i]];if(!d)return;el.style.cursor='pointer';
  el.addEventListener('mouseenter',e=>show(d,e));el.addEventListener('mousemove',move);
  el.addEventListener('mouseleave',()=>{tip.style.display='none';});});}
document.querySelectorAll('table.sortable').forEach(t=>{t.querySelectorAll('th').forEach((th,c)=>{
 th.addEventListener('click',()=>{const body=t.tBodies[0];const rows=Array.from(body.rows);
  const asc=th.dataset.dir!=='asc';t.querySelectorAll('th').forEach(x=>delete x.dataset.dir);
th.dataset.dir=asc?'asc':'desc';
  const key=r=>{const cell=r.cells[c];const v=cell.dataset.v;
return v!==undefined&&v!==''&&!isNaN(+v)?+v:cell.textContent;};
  rows.sort((a,b)=>{const x=key(a),y=key(b);
const o=(typeof x==='number'&&typeof y==='number')?x-y:String(x).localeCompare(String(y));
   return asc?o:-o;});rows.forEach(r=>body.appendChild(r));});});});
})();
"""


def esc(value: Any) -> str:
    """Text made safe for HTML."""
    return html.escape(str(value), quote=True)


class Page:
    """An HTML page under construction: sections of figures and tables, and the hover data of their points."""

    def __init__(self, title: str, subtitle: str, png_dir: str | Path | None = None) -> None:
        self.title, self.subtitle = title, subtitle
        self.sections: list[str] = []
        self.points: dict[str, list[str]] = {}  # svg id -> the key of each point's record, in drawing order
        self.records: dict[str, dict[str, Any]] = {}  # what a point is (a trial is kept once, however often drawn)
        self.png_dir = Path(png_dir) if png_dir is not None else None
        self.pngs: list[Path] = []
        self._svgs = 0

    def svg(self, fig: Any, name: str) -> str:
        """The figure as inline SVG (ids salted so that several figures on one page never share one), and as
        ``<png_dir>/<name>.png`` when PNGs were asked for; the figure is closed."""
        import io

        plt = pyplot()
        if self.png_dir is not None:  # the name may come from stored text: one plain file name, never a path
            stem = safe_name(name, "figure")
            while self.png_dir / f"{stem}.png" in self.pngs:
                stem += "_"
            png = io.BytesIO()
            fig.savefig(png, format="png", dpi=150, bbox_inches="tight")
            self.pngs.append(write_file(png.getvalue(), self.png_dir / f"{stem}.png"))
        self._svgs += 1
        buffer = io.StringIO()
        with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"{name}-{self._svgs}"}):
            fig.savefig(buffer, format="svg", bbox_inches="tight")
        plt.close(fig)
        text = buffer.getvalue()
        return compact_svg(text[text.index("<svg") :])

    def figure(self, figure: Figure) -> str:
        """A figure with its caption; its points' hover data joins the page's."""
        for gid, items in figure.points.items():
            keys = []
            for item in items:
                key = f"t{item['trial']}" if "trial" in item else f"{gid}-{len(keys)}"
                self.records.setdefault(key, item)
                keys.append(key)
            self.points[gid] = keys
        return f'<figure data-name="{esc(figure.name)}">{self.svg(figure.fig, figure.name)}' \
               f"<figcaption>{esc(figure.caption)}</figcaption></figure>"  # fmt: skip

    def drawing(self, genotype: Any, name: str) -> str:
        """The architecture's drawing(s), inline; nothing for a space without drawings (a space of your own)."""
        try:
            figures = draw(genotype)
        except ArchsearchError:
            return ""
        return "".join(self.svg(fig, f"{name}_{part}") for part, fig in figures)

    def section(self, title: str, body: str, anchor: str) -> None:
        self.sections.append(f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>')

    def render(self) -> str:
        data = finite({"points": self.points, "records": self.records})
        script = f"const DATA={script_json(data)};{SCRIPT}"
        digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
        # the one script that may run is this page's own (by its hash): no inline handlers, no network, no forms
        policy = (f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; img-src data:; "
                  "form-action 'none'; base-uri 'none'")  # fmt: skip
        return (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{esc(policy)}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(self.title)}</title><style>{STYLE}</style></head><body>"
            f"<header><h1>{esc(self.title)}</h1><p>{esc(self.subtitle)}</p></header><main>"
            + "".join(self.sections)
            + f'</main><div id="tip"></div><script>{script}</script></body></html>'
        )


_USE = re.compile(r'<use xlink:href="#([\w-]+)" x="(-?[\d.]+)" y="(-?[\d.]+)"( style="[^"]*")?/>')


def compact_svg(svg: str) -> str:
    """matplotlib's SVG made smaller without changing what it shows: no indentation, marker positions to 0.1 px, and
    a style shared by every use of a marker moved onto the marker's definition (a 1,000-point scatter: -45%)."""
    svg = re.sub(r"\n\s+", "\n", svg)
    # path coordinates to 0.01 px (matplotlib writes 6 decimals)
    svg = re.sub(r' d="[^"]*"', lambda m: re.sub(r"(\.\d\d)\d+", r"\1", m.group(0)), svg)
    styles: dict[str, set[str]] = {}
    for ref, _x, _y, style in _USE.findall(svg):
        styles.setdefault(ref, set()).add(style)
    shared = {ref: next(iter(s)) for ref, s in styles.items() if len(s) == 1 and next(iter(s))}

    def use(m: re.Match[str]) -> str:
        ref, x, y, style = m.groups()
        keep = "" if ref in shared else (style or "")
        return f'<use xlink:href="#{ref}" x="{float(x):.1f}" y="{float(y):.1f}"{keep}/>'

    svg = _USE.sub(use, svg)
    for ref, style in shared.items():  # the definition's own style is replaced: the uses' style names fill and stroke
        svg = re.sub(rf'(<path id="{ref}"[^>]*?) style="[^"]*"', rf"\1{style}", svg, count=1, flags=re.S)
    return svg


def finite(obj: Any, digits: int = 5) -> Any:
    """``obj`` with floats rounded to ``digits`` significant digits and non-finite ones as ``None`` (JSON has no
    NaN)."""
    if isinstance(obj, float):
        if not math.isfinite(obj):
            return None
        rounded = float(f"{obj:.{digits}g}")
        return rounded if math.isfinite(rounded) else obj  # 1.79769e308 rounds up past the largest float
    if isinstance(obj, dict):
        return {k: finite(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v, digits) for v in obj]
    return obj


def kv_table(rows: Sequence[tuple[str, Any]]) -> str:
    """A two-column table of names and values."""
    return '<table class="kv">' + "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in rows) + "</table>"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], sortable: bool = True, raw: Sequence[int] = ()) -> str:
    """A table; numbers are right-aligned and sort as numbers; the columns in ``raw`` hold HTML (drawings)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for c, v in enumerate(row):
            if c in raw:
                cells.append(f'<td class="draw">{v}</td>')
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                cells.append(f'<td class="num" data-v="{v}">{esc(readable(v))}</td>')
            else:
                cells.append(f'<td class="{"arch" if headers[c] == "architecture" else ""}">{esc(v)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    cls = ' class="sortable"' if sortable else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def readable(value: float) -> str:
    """A number for reading: 58.1k, 1.18M, 95.14."""
    if value != value:  # NaN
        return "-"
    magnitude = abs(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if (magnitude >= limit and float(value).is_integer()) or magnitude >= 10 * limit:
            return f"{value / limit:.3g}{suffix}"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.4g}" if magnitude < 1000 else f"{value:,.0f}"


_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def script_json(data: Any) -> str:
    """``data`` as JSON that is safe inside a ``<script>`` element: ``<``, ``>``, ``&`` and the two characters
    JavaScript reads as line ends are ``\\uXXXX`` escapes, so no stored text can close the element or open a
    comment (``<!--<script>``) that swallows it."""
    text = json.dumps(data, default=str, allow_nan=False)
    return re.sub("[<>&\u2028\u2029]", lambda m: _JSON_ESCAPES[m.group(0)], text)


def watch(build: Callable[[], Path], busy: Callable[[], bool], every: float, on_write: Callable[[Path], None],
          stop_after: float | None = None) -> Path:  # fmt: skip
    """Rebuild the report every ``every`` seconds while ``busy()`` (a process writes the run), then once more."""
    if every <= 0:
        raise ArchsearchError(f"--every must be > 0 seconds, got {every}")
    start = time.monotonic()
    while True:
        running = busy()
        path = build()
        on_write(path)
        if not running or (stop_after is not None and time.monotonic() - start >= stop_after):
            return path
        time.sleep(every)
