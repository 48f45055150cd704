"""Render report blocks (headings, paragraphs, tables, figures, a card) as Markdown and as
self-contained HTML (plots embedded as data URIs; readable on a phone: viewport meta, tables
scroll sideways inside their own box). Files are written atomically.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

_CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:1.5em auto;padding:0 .8em;color:#222;"
        "line-height:1.45}"
        ".scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:1em 0}"
        "table{border-collapse:collapse;font-size:.88em}td,th{border:1px solid #ccc;padding:.3em .55em;text-align:left;"
        "white-space:nowrap}th{background:#f4f4f4}"
        ".card{border:2px solid #333;border-radius:8px;padding:.6em 1em;margin:1em 0;background:#fafafa}"
        ".card h2{margin-top:.2em}.card li{margin:.35em 0}"
        "img{max-width:100%;height:auto;border:1px solid #eee;margin:.5em 0}code,pre{background:#f4f4f4;padding:0 .2em}"
        "pre{overflow-x:auto;padding:.5em}")


def markdown(blocks) -> str:
    out = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            out.append("#" * int(kind[1]) + " " + block[1])
        elif kind == "p":
            out.append(block[1])
        elif kind == "table":
            cells = lambda row: "| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |"
            out.append("\n".join([cells(block[1]), cells(["---"] * len(block[1])), *map(cells, block[2])]))
        elif kind == "img":
            out.append(f"![{block[1]}]({block[3]})")
        elif kind == "card":
            out.append("> **" + block[1] + "**\n>\n" + "\n".join(f"> - {line}" for line in block[2]))
        elif kind == "pre":
            out.append("```\n" + block[1].rstrip() + "\n```")
    return "\n\n".join(out) + "\n"


def to_html(blocks) -> str:
    body = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{html.escape(block[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_strong(html.escape(block[1]))}</p>")
        elif kind == "table":
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in block[1])
            rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                           for row in block[2])
            body.append(f'<div class="scroll"><table><tr>{head}</tr>{rows}</table></div>')
        elif kind == "img":
            data = base64.b64encode(Path(block[2]).read_bytes()).decode("ascii")
            body.append(f'<figure><img alt="{html.escape(block[1])}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{html.escape(block[1])}</figcaption></figure>")
        elif kind == "card":
            items = "".join(f"<li>{_strong(html.escape(line))}</li>" for line in block[2])
            body.append(f'<section class="card" id="verdict"><h2>{html.escape(block[1])}</h2><ul>{items}</ul></section>')
        elif kind == "pre":
            body.append(f"<pre>{html.escape(block[1])}</pre>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>scalecompress report</title>"
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_atomic(path: Path, text: str) -> None:
    from compress.atomic import write_text

    write_text(path, text)


def _strong(text: str) -> str:
    while text.count("**") >= 2:
        text = text.replace("**", "<strong>", 1).replace("**", "</strong>", 1)
    return text
