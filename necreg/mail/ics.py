"""A minimal iCalendar (RFC 5545) file for an event: one all-day VEVENT."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

#: Content lines longer than this many octets are folded (RFC 5545 section 3.1).
FOLD_OCTETS = 75


def escape_text(value: str) -> str:
    """Escape a TEXT value: backslash, semicolon, comma and line breaks."""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def fold(line: str) -> str:
    """Fold one content line at 75 octets, never inside a UTF-8 character.

    Continuation lines start with a space, which counts towards their 75 octets.
    """
    if len(line) <= FOLD_OCTETS // 4 or len(line.encode("utf-8")) <= FOLD_OCTETS:
        return line  # fits (a character is at most 4 octets): most lines do
    parts: list[str] = []
    current = ""
    size = 0
    limit = FOLD_OCTETS
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            parts.append(current)
            current, size, limit = " ", 1, FOLD_OCTETS
        current += char
        size += width
    parts.append(current)
    return "\r\n".join(parts)


#: The lines every calendar of ours begins with.
CALENDAR_HEAD = (
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//necreg//NEC Symposium registration//EN",
    "CALSCALE:GREGORIAN",
    "METHOD:PUBLISH",
)


def _date(value: date) -> str:
    return value.strftime("%Y%m%d")


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def event_calendar(
    *,
    uid: str,
    summary: str,
    location: str,
    starts_on: date,
    ends_on: date,
    stamp: datetime,
    description: str = "",
    url: str = "",
) -> str:
    """The .ics text: CRLF line endings, all-day dates, DTEND exclusive (the day after)."""
    lines = [
        *CALENDAR_HEAD,
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{_stamp(stamp)}",
        f"DTSTART;VALUE=DATE:{_date(starts_on)}",
        f"DTEND;VALUE=DATE:{_date(ends_on + timedelta(days=1))}",
        f"SUMMARY:{escape_text(summary)}",
        f"LOCATION:{escape_text(location)}",
    ]
    if description:
        lines.append(f"DESCRIPTION:{escape_text(description)}")
    if url:
        lines.append(f"URL:{url}")
    lines += ["TRANSP:TRANSPARENT", "END:VEVENT", "END:VCALENDAR"]
    return "".join(fold(line) + "\r\n" for line in lines)


def program_calendar(
    *, uid_suffix: str, items: list[dict[str, str | datetime]], stamp: datetime, name: str
) -> str:
    """The .ics text of a person's agenda: a VEVENT per item (``key``, ``title``,
    ``starts_at``, ``ends_at``, ``location``, ``description``), times in UTC, so every
    calendar shows them in its own zone."""
    lines = [*CALENDAR_HEAD, f"X-WR-CALNAME:{escape_text(name)}"]
    for item in items:
        starts_at, ends_at = item["starts_at"], item["ends_at"]
        assert isinstance(starts_at, datetime) and isinstance(ends_at, datetime)
        lines += [
            "BEGIN:VEVENT",
            f"UID:{item['key']}-{uid_suffix}",
            f"DTSTAMP:{_stamp(stamp)}",
            f"DTSTART:{_stamp(starts_at)}",
            f"DTEND:{_stamp(ends_at)}",
            f"SUMMARY:{escape_text(str(item['title']))}",
            f"LOCATION:{escape_text(str(item['location']))}",
            f"DESCRIPTION:{escape_text(str(item['description']))}",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)
