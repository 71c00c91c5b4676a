"""What text shaping costs a badge export: N badges (default 1,000) written to A4 sheets never
shaped, all shaped, and shaped only where the text needs it (as necreg prints them), in the
same run; prints the median time of each, its ratio to unshaped, and the size of each PDF.

The names are a conference's mix: mostly Latin (with accents), some Greek, Cyrillic, Arabic,
Hebrew and, when Noto Sans CJK is installed, Chinese and Japanese; a few too long for one line.

    .venv/bin/python bench/badges_shaping.py
    .venv/bin/python bench/badges_shaping.py --badges 200 --rounds 5
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from necreg.badges_pdf import LAYOUTS, Badge, BadgeSheet  # noqa: E402
from necreg.pdf_fonts import needs_shaping  # noqa: E402

NAMES = [
    "Jae Kim",
    "Zoë Núñez",
    "Nguyễn Thị Minh Khai",
    "Siobhán Ó Súilleabháin",
    "Łukasz Wąsik",
    "Dr. Maximiliana Alexandrina Featherstonehaugh-Worthington III",
    "Ana Silva",
    "Jürgen Müller",
    "Γιώργος Παπαδόπουλος",
    "Олександра Ковальчук",
    "محمد عبد الرحمن",
    "שרה לוי",
    "山田 太郎",
    "李小龙",
    "María José García-Hernández",
    "Bo Li",
]
ROLES = ["clinician", "scientist", "family", "advocate"]


def badges(n: int) -> list[Badge]:
    return [
        Badge(
            code=f"NEC-{i:06d}".replace("0", "A"),
            badge_name=NAMES[i % len(NAMES)],
            role=ROLES[i % len(ROLES)],
            institution="Cincinnati Children's Hospital Medical Center" if i % 2 else "UNC",
            country="United States",
            early_career=i % 3 == 0,
            photo_consent=i % 7 != 0,
        )
        for i in range(n)
    ]


def export(items: list[Badge], *, shaping: bool | None) -> tuple[float, int]:
    """Seconds to lay out and write the PDF (fonts loaded included), and its size."""
    started = time.perf_counter()
    sheet = BadgeSheet(LAYOUTS["a4"], "NEC Symposium", shaping=shaping)
    for badge in items:
        sheet.add(badge)
    out = io.BytesIO()
    sheet.output(out)
    return time.perf_counter() - started, len(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--badges", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    items = badges(args.badges)
    modes = {False: "never shaped", True: "all shaped", None: "shaped as needed (necreg)"}
    times: dict[bool | None, list[float]] = {mode: [] for mode in modes}
    sizes: dict[bool | None, int] = {}
    for _ in range(args.rounds):
        for mode in modes:  # interleaved, so drift hits every mode alike
            seconds, size = export(items, shaping=mode)
            times[mode].append(seconds)
            sizes[mode] = size
    shaped = sum(any(needs_shaping(t) for t in (b.badge_name, b.institution)) for b in items)
    print(f"{args.badges} badges ({shaped} need shaping), A4, median of {args.rounds} rounds")
    base = statistics.median(times[False])
    for mode, label in modes.items():
        median = statistics.median(times[mode])
        print(
            f"  {label:27} {median:7.2f} s ({median / base:.2f}x)"
            f"  {sizes[mode] / 1e6:5.2f} MB ({sizes[mode] / sizes[False]:.2f}x)"
            f"  {median / args.badges * 1000:5.1f} ms a badge"
        )


if __name__ == "__main__":
    main()
