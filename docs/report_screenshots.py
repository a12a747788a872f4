"""The README's report screenshots: the top of each report page in headless Chromium (Playwright), scaled down and
quantised so each PNG stays small.

    python docs/report_screenshots.py table=runs/t/report.html pareto=runs/p/report.html ...
"""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

OUT = Path(__file__).parent / "images"


def main(pairs: list[str]) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("needs Debian's chromium (apt-get install chromium)")
    OUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for pair in pairs:
            name, _, path = pair.partition("=")
            page = browser.new_page(viewport={"width": 1250, "height": 1000})
            page.goto(Path(path).resolve().as_uri())
            shot = Image.open(io.BytesIO(page.screenshot()))
            page.close()
            small = shot.resize((shot.width * 3 // 5, shot.height * 3 // 5), Image.LANCZOS).convert("RGB")
            target = OUT / f"report_{name}.png"
            small.quantize(colors=128).save(target, optimize=True)
            print(f"{target} {target.stat().st_size // 1024} KiB")
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1:])
