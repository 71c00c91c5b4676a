"""Households, attendance mode and consents (issue 12), and the dashboard's totals per choice.

- ``events``: ``virtual``, ``virtual_capacity``, ``join_url``, ``max_guests``,
  ``infants_count``, ``consent_version``.
- ``attendees``: ``party_id`` (a companion's lead), ``age_band``, ``takes_place``,
  ``attendance``, ``consent_version`` and the photo and attendee-list consents with their
  time and version. A companion has role ``guest`` and no e-mail: the role and e-mail checks
  and the one-registration-per-e-mail index change.
- ``tallies``: kinds ``virtual`` (online places per role; in person is the rest of ``role``)
  and ``answer`` (active attendees per choice).
- The triggers of 0010 are replaced (pools per attendance, places only for those who take
  one, the answers' figures): their SQL is frozen here as it was written in
  necreg/triggers.py at this revision.

SQLite cannot alter a table's constraints: they are changed in the table's stored
definition (``writable_schema``), which SQLite documents for changes that leave the stored
rows as they are. Every row already there satisfies the new checks (the new columns have
defaults that do).

Revision ID: 0012_households_attendance
Revises: 0011_questions_and_answers
"""

import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0012_households_attendance"
down_revision = "0011_questions_and_answers"
branch_labels = None
depends_on = None

OLD_ROLE_CHECK = "CHECK (role IN ('clinician', 'scientist', 'family', 'advocate'))"
NEW_ROLE_CHECK = "CHECK (role IN ('clinician', 'scientist', 'family', 'advocate', 'guest'))"
OLD_EMAIL_CHECK = "CHECK (length(email) BETWEEN 3 AND 254)"
NEW_EMAIL_CHECK = "CHECK (length(email) BETWEEN 3 AND 254 OR (party_id IS NOT NULL AND email = ''))"
OLD_KINDS_CHECK = (
    "CHECK (kind IN ('status', 'day', 'role', 'country', 'institution', 'early_career',"
    " 'checked_in', 'version'))"
)
NEW_KINDS_CHECK = (
    "CHECK (kind IN ('status', 'day', 'role', 'country', 'institution', 'early_career',"
    " 'checked_in', 'virtual', 'answer', 'version'))"
)
#: Checks this revision adds: (table, name, condition).
ADDED_CHECKS = [
    ("attendees", "ck_attendees_attendance_known", "attendance IN ('in_person', 'virtual')"),
    (
        "attendees",
        "ck_attendees_age_band_known",
        "age_band IS NULL OR age_band IN ('adult', 'child', 'infant')",
    ),
    (
        "events",
        "ck_events_virtual_capacity_not_negative",
        "virtual_capacity IS NULL OR virtual_capacity >= 0",
    ),
    ("events", "ck_events_max_guests_range", "max_guests BETWEEN 0 AND 10"),
]
#: Checks this revision changes: (table, name, before, after).
CHANGED_CHECKS = [
    ("attendees", "ck_attendees_role_known", OLD_ROLE_CHECK, NEW_ROLE_CHECK),
    ("attendees", "ck_attendees_email_length", OLD_EMAIL_CHECK, NEW_EMAIL_CHECK),
    ("tallies", "ck_tallies_kind_known", OLD_KINDS_CHECK, NEW_KINDS_CHECK),
]
PARTY_FK = "fk_attendees_party_id_attendees"
#: Where the party's foreign key goes in SQLite's definition of attendees, and the key.
EVENT_FK = (
    "CONSTRAINT fk_attendees_event_id_events FOREIGN KEY(event_id)"
    " REFERENCES events (id) ON DELETE RESTRICT, "
)
PARTY_REFERENCES = (
    f"CONSTRAINT {PARTY_FK} FOREIGN KEY(party_id) REFERENCES attendees (id) ON DELETE CASCADE, "
)
EMAIL_INDEX = "uq_attendees_event_email_active"

EVENT_COLUMNS = [
    sa.Column("virtual", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("virtual_capacity", sa.Integer(), nullable=True),
    sa.Column("join_url", sa.String(length=500), nullable=False, server_default=""),
    sa.Column("max_guests", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("infants_count", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("consent_version", sa.String(length=40), nullable=False, server_default=""),
]
ATTENDEE_COLUMNS = [
    sa.Column("age_band", sa.String(length=8), nullable=True),
    sa.Column("takes_place", sa.Boolean(), nullable=False, server_default=sa.true()),
    sa.Column("attendance", sa.String(length=16), nullable=False, server_default="in_person"),
    sa.Column("consent_version", sa.String(length=40), nullable=False, server_default=""),
    sa.Column("photo_consent_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("photo_consent_version", sa.String(length=40), nullable=True),
    sa.Column("list_consent_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("list_consent_version", sa.String(length=40), nullable=True),
]

SQLITE_CREATE = [
    """CREATE TRIGGER attendees_tally_insert AFTER INSERT ON attendees BEGIN
    SELECT RAISE(ABORT, 'necreg: no room in role') WHERE NEW.status = 'confirmed' AND NEW.takes_place AND EXISTS
        (SELECT 1 FROM place_pools p WHERE p.event_id = NEW.event_id AND p.name = 'role:' || NEW.role AND NEW.attendance = 'in_person'
         AND NOT EXISTS (SELECT 1 FROM place_slots s
         WHERE s.pool_id = p.id AND s.attendee_id IS NULL));
    SELECT RAISE(ABORT, 'necreg: no room in event') WHERE NEW.status = 'confirmed' AND NEW.takes_place AND EXISTS
        (SELECT 1 FROM place_pools p WHERE p.event_id = NEW.event_id AND p.name = 'event' AND NEW.attendance = 'in_person'
         AND NOT EXISTS (SELECT 1 FROM place_slots s
         WHERE s.pool_id = p.id AND s.attendee_id IS NULL));
    SELECT RAISE(ABORT, 'necreg: no room in virtual') WHERE NEW.status = 'confirmed' AND NEW.takes_place AND EXISTS
        (SELECT 1 FROM place_pools p WHERE p.event_id = NEW.event_id AND p.name = 'virtual' AND NEW.attendance = 'virtual'
         AND NOT EXISTS (SELECT 1 FROM place_slots s
         WHERE s.pool_id = p.id AND s.attendee_id IS NULL));
    UPDATE place_slots SET attendee_id = NEW.id WHERE NEW.status = 'confirmed' AND NEW.takes_place AND id IN
        (SELECT (SELECT s.id FROM place_slots s WHERE s.pool_id = p.id
                 AND s.attendee_id IS NULL ORDER BY s.id LIMIT 1)
         FROM place_pools p WHERE p.event_id = NEW.event_id AND ((p.name = 'role:' || NEW.role AND NEW.attendance = 'in_person') OR (p.name = 'event' AND NEW.attendance = 'in_person') OR (p.name = 'virtual' AND NEW.attendance = 'virtual')));
    INSERT INTO tallies (event_id, kind, key, shard, n, changed_at)
        SELECT event_id, kind, key, 0, n, CURRENT_TIMESTAMP FROM (
            SELECT e AS event_id, k AS kind, v AS key, sum(d) AS n FROM (
                SELECT NULL AS e, NULL AS k, NULL AS v, 0 AS d WHERE 0
                
                UNION ALL SELECT NEW.event_id, 'status', NEW.status, 1 WHERE 1 = 1
        UNION ALL SELECT NEW.event_id, 'day', substr(NEW.created_at, 1, 10), 1 WHERE 1 = 1
        UNION ALL SELECT NEW.event_id, 'role', NEW.role, 1 WHERE NEW.status = 'confirmed' AND NEW.takes_place
        UNION ALL SELECT NEW.event_id, 'country', NEW.country, 1 WHERE NEW.status = 'confirmed'
        UNION ALL SELECT NEW.event_id, 'institution', trim(NEW.institution), 1 WHERE NEW.status = 'confirmed' AND trim(NEW.institution) <> ''
        UNION ALL SELECT NEW.event_id, 'early_career', '', 1 WHERE NEW.status = 'confirmed' AND NEW.early_career
        UNION ALL SELECT NEW.event_id, 'checked_in', '', 1 WHERE NEW.status = 'confirmed' AND NEW.checked_in_at IS NOT NULL
        UNION ALL SELECT NEW.event_id, 'virtual', NEW.role, 1 WHERE NEW.status = 'confirmed' AND NEW.takes_place AND NEW.attendance = 'virtual') GROUP BY e, k, v HAVING sum(d) <> 0)
        WHERE 1
        ON CONFLICT (event_id, kind, key, shard)
        DO UPDATE SET n = n + excluded.n, changed_at = excluded.changed_at;
    INSERT INTO tallies (event_id, kind, key, shard, n, changed_at)
        SELECT e, 'version', '', 0, 1, CURRENT_TIMESTAMP FROM (
            SELECT e, k, v, sum(d) AS n FROM (
                SELECT NULL AS e, NULL AS k, NULL AS v, 0 AS d WHERE 0
                
                UNION ALL SELECT NEW.event_id, 'status', NEW.status, 1 WHERE 1 = 1
        UNION ALL SELECT NEW.event_id, 'day', substr(NEW.created_at, 1, 10), 1 WHERE 1 = 1
        UNION ALL SELECT NEW.event_id, 'role', NEW.role, 1 WHERE NEW.status = 'confirmed' AND NEW.takes_place
        UNION ALL SELECT NEW.event_id, 'country', NEW.country, 1 WHERE NEW.status = 'confirmed'
        UNION ALL SELECT NEW.event_id, 'institution', trim(NEW.institution), 1 WHERE NEW.status = 'confirmed' AND trim(NEW.institution) <> ''
        UNION ALL SELECT NEW.event_id, 'early_career', '', 1 WHERE NEW.status = 'confirmed' AND NEW.early_career
        UNION ALL SELECT NEW.event_id, 'checked_in', '', 1 WHERE NEW.status = 'confirmed' AND NEW.checked_in_at IS NOT NULL
        UNION ALL SELECT NEW.event_id, 'virtual', NEW.role, 1 WHERE NEW.status = 'confirmed' AND NEW.takes_place AND NEW.attendance = 'virtual') GROUP BY e, k, v HAVING sum(d) <> 0)
        WHERE 1 GROUP BY e
        ON CONFLICT (event_id, kind, key, shard)
        DO UPDATE SET n = n + 1, changed_at = excluded.changed_at;
END""",
    """CREATE TRIGGER attendees_tally_delete AFTER DELETE ON attendees BEGIN
    DELETE FROM place_slots WHERE OLD.status = 'confirmed' AND attendee_id = OLD.id AND pool_id IN
        (SELECT p.id FROM place_pools p WHERE p.event_id = OLD.event_id AND p.capacity < (SELECT coalesce(sum(CASE WHEN p.name = 'virtual' OR t.kind = 'role' THEN t.n ELSE -t.n END), 0) FROM tallies t WHERE t.event_id = p.event_id AND ((p.name = 'virtual' AND t.kind = 'virtual') OR ((p.name = 'event' OR p.name = 'role:' || t.key) AND t.kind IN ('role', 'virtual')))));
    UPDATE place_slots SET attendee_id = NULL WHERE OLD.status = 'confirmed' AND attendee_id = OLD.id;
    INSERT INTO tallies (event_id, kind, key, shard, n, changed_at)
        SELECT event_id, kind, key, 0, n, CURRENT_TIMESTAMP FROM (
            SELECT e AS event_id, k AS kind, v AS key, sum(d) AS n FROM (
                SELECT NULL AS e, NULL AS k, NULL AS v, 0 AS d WHERE 0
                
                UNION ALL SELECT OLD.event_id, 'status', OLD.status, -1 WHERE 1 = 1
        UNION ALL SELECT OLD.event_id, 'day', substr(OLD.created_at, 1, 10), -1 WHERE 1 = 1
        UNION ALL SELECT OLD.event_id, 'role', OLD.role, -1 WHERE OLD.status = 'confirmed' AND OLD.takes_place
        UNION ALL SELECT OLD.event_id, 'country', OLD.country, -1 WHERE OLD.status = 'confirmed'
        UNION ALL SELECT OLD.event_id, 'institution', trim(OLD.institution), -1 WHERE OLD.status = 'confirmed' AND trim(OLD.institution) <> ''
        UNION ALL SELECT OLD.event_id, 'early_career', '', -1 WHERE OLD.status = 'confirmed' AND OLD.early_career
        UNION ALL SELECT OLD.event_id, 'checked_in', '', -1 WHERE OLD.status = 'confirmed' AND OLD.checked_in_at IS NOT NULL
        UNION ALL SELECT OLD.event_id, 'virtual', OLD.role, -1 WHERE OLD.status = 'confirmed' AND OLD.takes_place AND OLD.attendance = 'virtual') GROUP BY e, k, v HAVING sum(d) <> 0)
        WHERE 1
        ON CONFLICT (event_id, kind, key, shard)
        DO UPDATE SET n = n + excluded.n, changed_at = excluded.changed_at;
    INSERT INTO tallies (event_id, kind, key, shard, n, changed_at)
        SELECT e, 'version', '', 0, 1, CURRENT_TIMESTAMP FROM (
            SELECT e, k, v, sum(d) AS n FROM (
                SELECT NULL AS e, NULL AS k, NULL AS v, 0 AS d WHERE 0
                
                UNION ALL SELECT OLD.event_id, 'status', OLD.status, -1 WHERE 1 = 1
        UNION ALL SELECT OLD.event_id, 'day', substr(OLD.created_at, 1, 10), -1 WHERE 1 = 1
        UNION ALL SELECT OLD.event_id, 'role', OLD.role, -1 WHERE OLD.status = 'confirmed' AND OLD.takes_place
        UNION ALL SELECT OLD.event_id, 'country', OLD.country, -1 WHERE OLD.status = 'confirmed'
        UNION ALL SELECT OLD.event_id, 'institution', trim(OLD.institution), -1 WHERE OLD.status = 'confirmed' AND trim(OLD.institution) <> ''
        UNION ALL SELECT OLD.event_id, 'early_career', '', -1 WHERE OLD.status = 'confirmed' AND OLD.early_career
        UNION ALL SELECT OLD.event_id, 'checked_in', '', -1 WHERE OLD.status = 'confirmed' AND OLD.checked_in_at IS NOT NULL
        UNION ALL SELECT OLD.event_id, 'virtual', OLD.role, -1 WHERE OLD.status = 'confirmed' AND OLD.takes_place AND OLD.attendance = 'virtual') GROUP BY e, k, v HAVING sum(d) <> 0)
        WHERE 1 GROUP BY e
        ON CONFLICT (event_id, kind, key, shard)
        DO UPDATE SET n = n + 1, changed_at = excluded.changed_at;
END""",
    """CREATE TRIGGER attendees_tally_update AFTER UPDATE OF status, role, event_id, country, institution, early_career, checked_in_at, created_at, attendance, takes_place ON attendees BEGIN
    DELETE FROM place_slots WHERE OLD.status = 'confirmed' AND (NEW.status <> 'confirmed' OR NEW.role <> OLD.role OR NEW.event_id <> OLD.event_id OR NEW.attendance <> OLD.attendance OR NEW.takes_place <> OLD.takes_place) AND attendee_id = OLD.id AND pool_id IN
        (SELECT p.id FROM place_pools p WHERE p.event_id = OLD.event_id AND p.capacity < (SELECT coalesce(sum(CASE WHEN p.name = 'virtual' OR t.kind = 'role' THEN t.n ELSE -t.n END), 0) FROM tallies t WHERE t.event_id = p.event_id AND ((p.name = 'virtual' AND t.kind = 'virtual') OR ((p.name = 'event' OR p.name = 'role:' || t.key) AND t.kind IN ('role', 'virtual')))));
    UPDATE place_slots SET attendee_id = NULL WHERE OLD.status = 'confirmed' AND (NEW.status <> 'confirmed' OR NEW.role <> OLD.role OR NEW.event_id <> OLD.event_id OR NEW.attendance <> OLD.attendance OR NEW.takes_place <> OLD.takes_place) AND attendee_id = OLD.id;
    SELECT RAISE(ABORT, 'necreg: no room in role') WHERE NEW.status = 'confirmed' AND NEW.takes_place AND (OLD.status <> 'confirmed' OR (NEW.status <> 'confirmed' OR NEW.role <> OLD.role OR NEW.event_id <> OLD.event_id OR NEW.attendance <> OLD.attendance OR NEW.takes_place <> OLD.takes_place)) AND EXISTS
        (SELECT 1 FROM place_pools p WHERE p.event_id = NEW.event_id AND p.name = 'role:' || NEW.role AND NEW.attendance = 'in_person'
         AND NOT EXISTS (SELECT 1 FROM place_slots s
         WHERE s.pool_id = p.id AND s.attendee_id IS NULL));
    SELECT RAISE(ABORT, 'necreg: no room in event') WHERE NEW.status = 'confirmed' AND NEW.takes_place AND (OLD.status <> 'confirmed' OR (NEW.status <> 'confirmed' OR NEW.role <> OLD.role OR NEW.event_id <> OLD.event_id OR NEW.attendance <> OLD.attendance OR NEW.takes_place <> OLD.takes_place)) AND EXISTS
        (SELECT 1 FROM place_pools p WHERE p.event_id = NEW.event_id AND p.name = 'event' AND NEW.attendance = 'in_person'
         AND NOT EXISTS (SELECT 1 FROM place_slots s
         WHERE s.pool_id = p.id AND s.attendee_id IS NULL));
    SELECT RAISE(ABORT, 'necreg: no room in virtual') WHERE NEW.status = 'confirmed' AND NEW.takes_place AND (OLD.status <> 'confirmed' OR (NEW.status <> 'confirmed' OR NEW.role <> OLD.role OR NEW.event_id <> OLD.event_id OR NEW.attendance <> OLD.attendance OR NEW.takes_place <> OLD.takes_place)) AND EXISTS
        (SELECT 1 FROM place_pools p WHERE p.event_id = NEW.event_id AND p.name = 'virtual' AND NEW.attendance = 'virtual'
         AND NOT EXISTS (SELECT 1 FROM place_slots s
         WHERE s.pool_id = p.id AND s.attendee_id IS NULL));
    UPDATE place_slots SET attendee_id = NEW.id WHERE NEW.status = 'confirmed' AND NEW.takes_place AND (OLD.status <> 'confirmed' OR (NEW.status <> 'confirmed' OR NEW.role <> OLD.role OR NEW.event_id <> OLD.event_id OR NEW.attendance <> OLD.attendance OR NEW.takes_place <> OLD.takes_place)) AND id IN
        (SELECT (SELECT s.id FROM place_slots s WHERE s.pool_id = p.id
                 AND s.attendee_id IS NULL ORDER BY s.id LIMIT 1)
         FROM place_pools p WHERE p.event_id = NEW.event_id AND ((p.name = 'role:' || NEW.role AND NEW.attendance = 'in_person') OR (p.name = 'event' AND NEW.attendance = 'in_person') OR (p.name = 'virtual' AND NEW.attendance = 'virtual')));
    INSERT INTO tallies (event_id, kind, key, shard, n, changed_at)
        SELECT event_id, kind, key, 0, n, CURRENT_TIMESTAMP FROM (
            SELECT e AS event_id, k AS kind, v AS key, sum(d) AS n FROM (
                SELECT NULL AS e, NULL AS k, NULL AS v, 0 AS d WHERE 0
                
                UNION ALL SELECT OLD.event_id, 'status', OLD.status, -1 WHERE 1 = 1
        UNION ALL SELECT OLD.event_id, 'day', substr(OLD.created_at, 1, 10), -1 WHERE 1 = 1
        UNION ALL SELECT OLD.event_id, 'role', OLD.role, -1 WHERE OLD.status = 'confirmed' AND OLD.takes_place
        UNION ALL SELECT OLD.event_id, 'country', OLD.country, -1 WHERE OLD.status = 'confirmed'
        UNION ALL SELECT OLD.event_id, 'institution', trim(OLD.institution), -1 WHERE OLD.status = 'confirmed' AND trim(OLD.institution) <> ''
        UNION ALL SELECT OLD.event_id, 'early_career', '', -1 WHERE OLD.status = 'confirmed' AND OLD.early_career
        UNION ALL SELECT OLD.event_id, 'checked_in', '', -1 WHERE OLD.status = 'confirmed' AND OLD.checked_in_at IS NOT NULL
        UNION ALL SELECT OLD.event_id, 'virtual', OLD.role, -1 WHERE OLD.status = 'confirmed' AND OLD.takes_place AND OLD.attendance = 'virtual'
        UNION ALL SELECT OLD.event_id, 'answer', CAST(a.question_id AS TEXT) || ':' || a.choice, -1 FROM answers a WHERE a.attendee_id = OLD.id AND a.choice IS NOT NULL AND OLD.status = 'confirmed'
                UNION ALL SELECT NEW.event_id, 'status', NEW.status, 1 WHERE 1 = 1
        UNION ALL SELECT NEW.event_id, 'day', substr(NEW.created_at, 1, 10), 1 WHERE 1 = 1
        UNION ALL SELECT NEW.event_id, 'role', NEW.role, 1 WHERE NEW.status = 'confirmed' AND NEW.takes_place
        UNION ALL SELECT NEW.event_id, 'country', NEW.country, 1 WHERE NEW.status = 'confirmed'
        UNION ALL SELECT NEW.event_id, 'institution', trim(NEW.institution), 1 WHERE NEW.status = 'confirmed' AND trim(NEW.institution) <> ''
        UNION ALL SELECT NEW.event_id, 'early_career', '', 1 WHERE NEW.status = 'confirmed' AND NEW.early_career
        UNION ALL SELECT NEW.event_id, 'checked_in', '', 1 WHERE NEW.status = 'confirmed' AND NEW.checked_in_at IS NOT NULL
        UNION ALL SELECT NEW.event_id, 'virtual', NEW.role, 1 WHERE NEW.status = 'confirmed' AND NEW.takes_place AND NEW.attendance = 'virtual'
        UNION ALL SELECT NEW.event_id, 'answer', CAST(a.question_id AS TEXT) || ':' || a.choice, 1 FROM answers a WHERE a.attendee_id = NEW.id AND a.choice IS NOT NULL AND NEW.status = 'confirmed') GROUP BY e, k, v HAVING sum(d) <> 0)
        WHERE 1
        ON CONFLICT (event_id, kind, key, shard)
        DO UPDATE SET n = n + excluded.n, changed_at = excluded.changed_at;
    INSERT INTO tallies (event_id, kind, key, shard, n, changed_at)
        SELECT e, 'version', '', 0, 1, CURRENT_TIMESTAMP FROM (
            SELECT e, k, v, sum(d) AS n FROM (
                SELECT NULL AS e, NULL AS k, NULL AS v, 0 AS d WHERE 0
                
                UNION ALL SELECT OLD.event_id, 'status', OLD.status, -1 WHERE 1 = 1
        UNION ALL SELECT OLD.event_id, 'day', substr(OLD.created_at, 1, 10), -1 WHERE 1 = 1
        UNION ALL SELECT OLD.event_id, 'role', OLD.role, -1 WHERE OLD.status = 'confirmed' AND OLD.takes_place
        UNION ALL SELECT OLD.event_id, 'country', OLD.country, -1 WHERE OLD.status = 'confirmed'
        UNION ALL SELECT OLD.event_id, 'institution', trim(OLD.institution), -1 WHERE OLD.status = 'confirmed' AND trim(OLD.institution) <> ''
        UNION ALL SELECT OLD.event_id, 'early_career', '', -1 WHERE OLD.status = 'confirmed' AND OLD.early_career
        UNION ALL SELECT OLD.event_id, 'checked_in', '', -1 WHERE OLD.status = 'confirmed' AND OLD.checked_in_at IS NOT NULL
        UNION ALL SELECT OLD.event_id, 'virtual', OLD.role, -1 WHERE OLD.status = 'confirmed' AND OLD.takes_place AND OLD.attendance = 'virtual'
        UNION ALL SELECT OLD.event_id, 'answer', CAST(a.question_id AS TEXT) || ':' || a.choice, -1 FROM answers a WHERE a.attendee_id = OLD.id AND a.choice IS NOT NULL AND OLD.status = 'confirmed'
                UNION ALL SELECT NEW.event_id, 'status', NEW.status, 1 WHERE 1 = 1
        UNION ALL SELECT NEW.event_id, 'day', substr(NEW.created_at, 1, 10), 1 WHERE 1 = 1
        UNION ALL SELECT NEW.event_id, 'role', NEW.role, 1 WHERE NEW.status = 'confirmed' AND NEW.takes_place
        UNION ALL SELECT NEW.event_id, 'country', NEW.country, 1 WHERE NEW.status = 'confirmed'
        UNION ALL SELECT NEW.event_id, 'institution', trim(NEW.institution), 1 WHERE NEW.status = 'confirmed' AND trim(NEW.institution) <> ''
        UNION ALL SELECT NEW.event_id, 'early_career', '', 1 WHERE NEW.status = 'confirmed' AND NEW.early_career
        UNION ALL SELECT NEW.event_id, 'checked_in', '', 1 WHERE NEW.status = 'confirmed' AND NEW.checked_in_at IS NOT NULL
        UNION ALL SELECT NEW.event_id, 'virtual', NEW.role, 1 WHERE NEW.status = 'confirmed' AND NEW.takes_place AND NEW.attendance = 'virtual'
        UNION ALL SELECT NEW.event_id, 'answer', CAST(a.question_id AS TEXT) || ':' || a.choice, 1 FROM answers a WHERE a.attendee_id = NEW.id AND a.choice IS NOT NULL AND NEW.status = 'confirmed') GROUP BY e, k, v HAVING sum(d) <> 0)
        WHERE 1 GROUP BY e
        ON CONFLICT (event_id, kind, key, shard)
        DO UPDATE SET n = n + 1, changed_at = excluded.changed_at;
END""",
    """CREATE TRIGGER attendees_answers_first BEFORE DELETE ON attendees BEGIN
    DELETE FROM answers WHERE attendee_id = OLD.id;
END""",
    """CREATE TRIGGER answers_tally_insert AFTER INSERT ON answers BEGIN
    INSERT INTO tallies (event_id, kind, key, shard, n, changed_at)
        SELECT event_id, kind, key, 0, n, CURRENT_TIMESTAMP FROM (
            SELECT e AS event_id, k AS kind, v AS key, sum(d) AS n FROM (
                SELECT NULL AS e, NULL AS k, NULL AS v, 0 AS d WHERE 0
                UNION ALL SELECT a.event_id, 'answer', CAST(NEW.question_id AS TEXT) || ':' || NEW.choice, 1 FROM attendees a WHERE a.id = NEW.attendee_id AND NEW.choice IS NOT NULL AND a.status = 'confirmed') GROUP BY e, k, v HAVING sum(d) <> 0)
        WHERE 1
        ON CONFLICT (event_id, kind, key, shard)
        DO UPDATE SET n = n + excluded.n, changed_at = excluded.changed_at;
    INSERT INTO tallies (event_id, kind, key, shard, n, changed_at)
        SELECT e, 'version', '', 0, 1, CURRENT_TIMESTAMP FROM (
            SELECT e, k, v, sum(d) AS n FROM (
                SELECT NULL AS e, NULL AS k, NULL AS v, 0 AS d WHERE 0
                UNION ALL SELECT a.event_id, 'answer', CAST(NEW.question_id AS TEXT) || ':' || NEW.choice, 1 FROM attendees a WHERE a.id = NEW.attendee_id AND NEW.choice IS NOT NULL AND a.status = 'confirmed') GROUP BY e, k, v HAVING sum(d) <> 0)
        WHERE 1 GROUP BY e
        ON CONFLICT (event_id, kind, key, shard)
        DO UPDATE SET n = n + 1, changed_at = excluded.changed_at;
END""",
    """CREATE TRIGGER answers_tally_delete AFTER DELETE ON answers BEGIN
    INSERT INTO tallies (event_id, kind, key, shard, n, changed_at)
        SELECT event_id, kind, key, 0, n, CURRENT_TIMESTAMP FROM (
            SELECT e AS event_id, k AS kind, v AS key, sum(d) AS n FROM (
                SELECT NULL AS e, NULL AS k, NULL AS v, 0 AS d WHERE 0
                UNION ALL SELECT a.event_id, 'answer', CAST(OLD.question_id AS TEXT) || ':' || OLD.choice, -1 FROM attendees a WHERE a.id = OLD.attendee_id AND OLD.choice IS NOT NULL AND a.status = 'confirmed') GROUP BY e, k, v HAVING sum(d) <> 0)
        WHERE 1
        ON CONFLICT (event_id, kind, key, shard)
        DO UPDATE SET n = n + excluded.n, changed_at = excluded.changed_at;
    INSERT INTO tallies (event_id, kind, key, shard, n, changed_at)
        SELECT e, 'version', '', 0, 1, CURRENT_TIMESTAMP FROM (
            SELECT e, k, v, sum(d) AS n FROM (
                SELECT NULL AS e, NULL AS k, NULL AS v, 0 AS d WHERE 0
                UNION ALL SELECT a.event_id, 'answer', CAST(OLD.question_id AS TEXT) || ':' || OLD.choice, -1 FROM attendees a WHERE a.id = OLD.attendee_id AND OLD.choice IS NOT NULL AND a.status = 'confirmed') GROUP BY e, k, v HAVING sum(d) <> 0)
        WHERE 1 GROUP BY e
        ON CONFLICT (event_id, kind, key, shard)
        DO UPDATE SET n = n + 1, changed_at = excluded.changed_at;
END""",
    """CREATE TRIGGER answers_tally_update AFTER UPDATE OF attendee_id, question_id, choice ON answers BEGIN
    INSERT INTO tallies (event_id, kind, key, shard, n, changed_at)
        SELECT event_id, kind, key, 0, n, CURRENT_TIMESTAMP FROM (
            SELECT e AS event_id, k AS kind, v AS key, sum(d) AS n FROM (
                SELECT NULL AS e, NULL AS k, NULL AS v, 0 AS d WHERE 0
                UNION ALL SELECT a.event_id, 'answer', CAST(OLD.question_id AS TEXT) || ':' || OLD.choice, -1 FROM attendees a WHERE a.id = OLD.attendee_id AND OLD.choice IS NOT NULL AND a.status = 'confirmed'
                UNION ALL SELECT a.event_id, 'answer', CAST(NEW.question_id AS TEXT) || ':' || NEW.choice, 1 FROM attendees a WHERE a.id = NEW.attendee_id AND NEW.choice IS NOT NULL AND a.status = 'confirmed') GROUP BY e, k, v HAVING sum(d) <> 0)
        WHERE 1
        ON CONFLICT (event_id, kind, key, shard)
        DO UPDATE SET n = n + excluded.n, changed_at = excluded.changed_at;
    INSERT INTO tallies (event_id, kind, key, shard, n, changed_at)
        SELECT e, 'version', '', 0, 1, CURRENT_TIMESTAMP FROM (
            SELECT e, k, v, sum(d) AS n FROM (
                SELECT NULL AS e, NULL AS k, NULL AS v, 0 AS d WHERE 0
                UNION ALL SELECT a.event_id, 'answer', CAST(OLD.question_id AS TEXT) || ':' || OLD.choice, -1 FROM attendees a WHERE a.id = OLD.attendee_id AND OLD.choice IS NOT NULL AND a.status = 'confirmed'
                UNION ALL SELECT a.event_id, 'answer', CAST(NEW.question_id AS TEXT) || ':' || NEW.choice, 1 FROM attendees a WHERE a.id = NEW.attendee_id AND NEW.choice IS NOT NULL AND a.status = 'confirmed') GROUP BY e, k, v HAVING sum(d) <> 0)
        WHERE 1 GROUP BY e
        ON CONFLICT (event_id, kind, key, shard)
        DO UPDATE SET n = n + 1, changed_at = excluded.changed_at;
END""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS attendees_tally_insert",
    "DROP TRIGGER IF EXISTS attendees_tally_delete",
    "DROP TRIGGER IF EXISTS attendees_tally_update",
    "DROP TRIGGER IF EXISTS attendees_answers_first",
    "DROP TRIGGER IF EXISTS answers_tally_insert",
    "DROP TRIGGER IF EXISTS answers_tally_delete",
    "DROP TRIGGER IF EXISTS answers_tally_update",
]
POSTGRESQL_CREATE = [
    """
CREATE FUNCTION tally_shard() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    s integer := nullif(current_setting('necreg.tally_shard', true), '')::integer;
BEGIN
    IF s IS NOT NULL THEN
        RETURN s;
    END IF;
    FOR i IN 0..31 LOOP
        IF pg_try_advisory_xact_lock(5129539, i) THEN
            s := i;
            EXIT;
        END IF;
    END LOOP;
    IF s IS NULL THEN  -- every share is in use: wait for one
        s := floor(random() * 32)::integer;
        PERFORM pg_advisory_xact_lock(5129539, s);
    END IF;
    PERFORM set_config('necreg.tally_shard', s::text, true);
    RETURN s;
END $$
""",
    """
CREATE FUNCTION places_claim(a integer, e integer, r text, m text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    pool record;
    slot integer;
BEGIN
    FOR pool IN SELECT p.id, p.name FROM place_pools p
            WHERE p.event_id = e AND ((p.name = 'role:' || r AND m = 'in_person') OR (p.name = 'event' AND m = 'in_person') OR (p.name = 'virtual' AND m = 'virtual')) ORDER BY p.name = 'event' LOOP
        SELECT s.id INTO slot FROM place_slots s WHERE s.pool_id = pool.id
            AND s.attendee_id IS NULL ORDER BY s.id LIMIT 1 FOR UPDATE SKIP LOCKED;
        IF slot IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = 'necreg: no room in '
                || CASE WHEN pool.name IN ('event', 'virtual') THEN pool.name ELSE 'role' END;
        END IF;
        UPDATE place_slots SET attendee_id = a WHERE id = slot;
    END LOOP;
END $$
""",
    """
CREATE FUNCTION places_release(a integer, e integer) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM place_slots WHERE attendee_id = a AND pool_id IN
        (SELECT p.id FROM place_pools p WHERE p.event_id = e AND p.capacity < (SELECT coalesce(sum(CASE WHEN p.name = 'virtual' OR t.kind = 'role' THEN t.n ELSE -t.n END), 0) FROM tallies t WHERE t.event_id = p.event_id AND ((p.name = 'virtual' AND t.kind = 'virtual') OR ((p.name = 'event' OR p.name = 'role:' || t.key) AND t.kind IN ('role', 'virtual')))));
    UPDATE place_slots SET attendee_id = NULL WHERE attendee_id = a;
END $$
""",
    """
CREATE FUNCTION attendees_tally() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A bulk load (seed-demo) counts once at its end (counters.recount) instead of row by row.
    IF current_setting('necreg.bulk_load', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' AND OLD.status = 'confirmed'
            AND (TG_OP = 'DELETE' OR (NEW.status <> 'confirmed' OR NEW.role <> OLD.role OR NEW.event_id <> OLD.event_id OR NEW.attendance <> OLD.attendance OR NEW.takes_place <> OLD.takes_place)) THEN
        PERFORM places_release(OLD.id, OLD.event_id);
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.status = 'confirmed' AND NEW.takes_place AND (TG_OP = 'INSERT'
            OR OLD.status <> 'confirmed' OR (NEW.status <> 'confirmed' OR NEW.role <> OLD.role OR NEW.event_id <> OLD.event_id OR NEW.attendance <> OLD.attendance OR NEW.takes_place <> OLD.takes_place)) THEN
        PERFORM places_claim(NEW.id, NEW.event_id, NEW.role, NEW.attendance);
    END IF;
    WITH d (event_id, kind, key, n) AS (
        SELECT e, k, v, sum(x) FROM (
            SELECT NULL::integer, NULL::text, NULL::text, 0 WHERE false
            UNION ALL SELECT * FROM (
                SELECT OLD.event_id, 'status', OLD.status, -1 WHERE 1 = 1
        UNION ALL SELECT OLD.event_id, 'day', to_char(OLD.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), -1 WHERE 1 = 1
        UNION ALL SELECT OLD.event_id, 'role', OLD.role, -1 WHERE OLD.status = 'confirmed' AND OLD.takes_place
        UNION ALL SELECT OLD.event_id, 'country', OLD.country, -1 WHERE OLD.status = 'confirmed'
        UNION ALL SELECT OLD.event_id, 'institution', trim(OLD.institution), -1 WHERE OLD.status = 'confirmed' AND trim(OLD.institution) <> ''
        UNION ALL SELECT OLD.event_id, 'early_career', '', -1 WHERE OLD.status = 'confirmed' AND OLD.early_career
        UNION ALL SELECT OLD.event_id, 'checked_in', '', -1 WHERE OLD.status = 'confirmed' AND OLD.checked_in_at IS NOT NULL
        UNION ALL SELECT OLD.event_id, 'virtual', OLD.role, -1 WHERE OLD.status = 'confirmed' AND OLD.takes_place AND OLD.attendance = 'virtual') o WHERE TG_OP <> 'INSERT'
            UNION ALL SELECT * FROM (
                SELECT NEW.event_id, 'status', NEW.status, 1 WHERE 1 = 1
        UNION ALL SELECT NEW.event_id, 'day', to_char(NEW.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), 1 WHERE 1 = 1
        UNION ALL SELECT NEW.event_id, 'role', NEW.role, 1 WHERE NEW.status = 'confirmed' AND NEW.takes_place
        UNION ALL SELECT NEW.event_id, 'country', NEW.country, 1 WHERE NEW.status = 'confirmed'
        UNION ALL SELECT NEW.event_id, 'institution', trim(NEW.institution), 1 WHERE NEW.status = 'confirmed' AND trim(NEW.institution) <> ''
        UNION ALL SELECT NEW.event_id, 'early_career', '', 1 WHERE NEW.status = 'confirmed' AND NEW.early_career
        UNION ALL SELECT NEW.event_id, 'checked_in', '', 1 WHERE NEW.status = 'confirmed' AND NEW.checked_in_at IS NOT NULL
        UNION ALL SELECT NEW.event_id, 'virtual', NEW.role, 1 WHERE NEW.status = 'confirmed' AND NEW.takes_place AND NEW.attendance = 'virtual') n WHERE TG_OP <> 'DELETE'
            UNION ALL SELECT * FROM (
                SELECT OLD.event_id, 'answer', CAST(a.question_id AS TEXT) || ':' || a.choice, -1 FROM answers a WHERE a.attendee_id = OLD.id AND a.choice IS NOT NULL AND OLD.status = 'confirmed'
                UNION ALL SELECT NEW.event_id, 'answer', CAST(a.question_id AS TEXT) || ':' || a.choice, 1 FROM answers a WHERE a.attendee_id = NEW.id AND a.choice IS NOT NULL AND NEW.status = 'confirmed') a WHERE TG_OP = 'UPDATE'
        ) AS rows (e, k, v, x) GROUP BY e, k, v HAVING sum(x) <> 0
    )
    INSERT INTO tallies AS t (event_id, kind, key, shard, n, changed_at)
    SELECT event_id, kind, key, tally_shard(), n, now() FROM (
        SELECT * FROM d UNION ALL SELECT DISTINCT event_id, 'version', '', 1 FROM d
    ) AS moved ORDER BY event_id, kind, key
    ON CONFLICT (event_id, kind, key, shard)
    DO UPDATE SET n = t.n + EXCLUDED.n, changed_at = EXCLUDED.changed_at;
    RETURN NULL;
END $$
""",
    """CREATE TRIGGER attendees_tally AFTER INSERT OR DELETE OR UPDATE OF status, role, event_id, country, institution, early_career, checked_in_at, created_at, attendance, takes_place ON attendees FOR EACH ROW EXECUTE FUNCTION attendees_tally()""",
    """
CREATE FUNCTION attendees_answers_first() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM answers WHERE attendee_id = OLD.id;
    RETURN OLD;
END $$
""",
    """CREATE TRIGGER attendees_answers_first BEFORE DELETE ON attendees FOR EACH ROW EXECUTE FUNCTION attendees_answers_first()""",
    """
CREATE FUNCTION answers_tally() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('necreg.bulk_load', true) = 'on' THEN
        RETURN NULL;
    END IF;
    WITH d (event_id, kind, key, n) AS (
        SELECT e, k, v, sum(x) FROM (
            SELECT NULL::integer, NULL::text, NULL::text, 0 WHERE false
            UNION ALL SELECT * FROM (
                SELECT a.event_id, 'answer', CAST(OLD.question_id AS TEXT) || ':' || OLD.choice, -1 FROM attendees a WHERE a.id = OLD.attendee_id AND OLD.choice IS NOT NULL AND a.status = 'confirmed') o WHERE TG_OP <> 'INSERT'
            UNION ALL SELECT * FROM (
                SELECT a.event_id, 'answer', CAST(NEW.question_id AS TEXT) || ':' || NEW.choice, 1 FROM attendees a WHERE a.id = NEW.attendee_id AND NEW.choice IS NOT NULL AND a.status = 'confirmed') n WHERE TG_OP <> 'DELETE'
        ) AS rows (e, k, v, x) GROUP BY e, k, v HAVING sum(x) <> 0
    )
    INSERT INTO tallies AS t (event_id, kind, key, shard, n, changed_at)
    SELECT event_id, kind, key, tally_shard(), n, now() FROM (
        SELECT * FROM d UNION ALL SELECT DISTINCT event_id, 'version', '', 1 FROM d
    ) AS moved ORDER BY event_id, kind, key
    ON CONFLICT (event_id, kind, key, shard)
    DO UPDATE SET n = t.n + EXCLUDED.n, changed_at = EXCLUDED.changed_at;
    RETURN NULL;
END $$
""",
    """CREATE TRIGGER answers_tally AFTER INSERT OR DELETE OR UPDATE OF attendee_id, question_id, choice ON answers FOR EACH ROW EXECUTE FUNCTION answers_tally()""",
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS answers_tally ON answers",
    "DROP FUNCTION IF EXISTS answers_tally()",
    "DROP TRIGGER IF EXISTS attendees_answers_first ON attendees",
    "DROP FUNCTION IF EXISTS attendees_answers_first()",
    "DROP TRIGGER IF EXISTS attendees_tally ON attendees",
    "DROP FUNCTION IF EXISTS attendees_tally()",
    "DROP FUNCTION IF EXISTS places_release(integer, integer)",
    "DROP FUNCTION IF EXISTS places_claim(integer, integer, text, text)",
    "DROP FUNCTION IF EXISTS tally_shard()",
]


def _migration(number: int, name: str):
    path = Path(__file__).with_name(f"{number:04d}_{name}.py")
    spec = importlib.util.spec_from_file_location(f"migration_{number:04d}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check_sql(name: str, condition: str) -> str:
    return f"CONSTRAINT {name} {condition}"


def _rewrite_sqlite_table(table: str, replacements: list[tuple[str, str]]) -> None:
    """Change ``table``'s stored definition by exact replacements (each found once), as
    SQLite documents for changes that leave the stored rows as they are."""
    bind = op.get_bind()
    read = sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t")
    sql = bind.execute(read, {"t": table}).scalar_one()
    for old, new in replacements:
        if sql.count(old) != 1:
            raise RuntimeError(f"{table}: expected {old!r} once in its definition")
        sql = sql.replace(old, new)
    version = bind.execute(sa.text("PRAGMA schema_version")).scalar_one()
    bind.execute(sa.text("PRAGMA writable_schema = ON"))
    bind.execute(
        sa.text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND name = :t"),
        {"sql": sql, "t": table},
    )
    bind.execute(sa.text(f"PRAGMA schema_version = {int(version) + 1}"))
    bind.execute(sa.text("PRAGMA writable_schema = OFF"))


def _sqlite_checks(upgrade: bool) -> None:
    by_table: dict[str, list[tuple[str, str]]] = {}
    for table, name, before, after in CHANGED_CHECKS:
        old, new = _check_sql(name, before), _check_sql(name, after)
        by_table.setdefault(table, []).append((old, new) if upgrade else (new, old))
    for table, name, condition in ADDED_CHECKS:
        anchor = f"CONSTRAINT pk_{table} PRIMARY KEY (id), "
        added = anchor + _check_sql(name, f"CHECK ({condition})") + ", "
        by_table.setdefault(table, []).append((anchor, added) if upgrade else (added, anchor))
    party = (EVENT_FK, EVENT_FK + PARTY_REFERENCES)
    by_table["attendees"].append(party if upgrade else party[::-1])
    if not upgrade:
        # Undone in the reverse order (each added check went in right after the key).
        by_table = {table: replacements[::-1] for table, replacements in by_table.items()}
    for table, replacements in by_table.items():
        _rewrite_sqlite_table(table, replacements)


def _postgresql_checks(upgrade: bool) -> None:
    for table, name, before, after in CHANGED_CHECKS:
        op.drop_constraint(op.f(name), table, type_="check")
        condition = (after if upgrade else before).removeprefix("CHECK (")[:-1]
        op.create_check_constraint(op.f(name), table, condition)
    for table, name, condition in ADDED_CHECKS:
        if upgrade:
            op.create_check_constraint(op.f(name), table, condition)
        else:
            op.drop_constraint(op.f(name), table, type_="check")


def _email_index(where: str) -> None:
    op.create_index(
        EMAIL_INDEX,
        "attendees",
        ["event_id", sa.text("lower(email)")],
        unique=True,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )


def _count_existing() -> None:
    """The new figures of the registrations already there (shard 0): the choices of active
    attendees' answers. Every registration there is in person (no ``virtual`` figure)."""
    op.execute(
        "INSERT INTO tallies (event_id, kind, key, shard, n, changed_at)"
        " SELECT a.event_id, 'answer', CAST(s.question_id AS TEXT) || ':' || s.choice, 0,"
        " count(*), CURRENT_TIMESTAMP FROM answers s JOIN attendees a ON a.id = s.attendee_id"
        " WHERE a.status = 'confirmed' AND s.choice IS NOT NULL GROUP BY 1, 3"
    )


def upgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    before = _migration(10, "places_and_tallies")
    for statement in before.POSTGRESQL_DROP if postgres else before.SQLITE_DROP:
        op.execute(statement)
    for column in EVENT_COLUMNS:
        op.add_column("events", column)
    if postgres:
        op.add_column("attendees", sa.Column("party_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            op.f(PARTY_FK), "attendees", "attendees", ["party_id"], ["id"], ondelete="CASCADE"
        )
    else:
        # Its foreign key goes in with the checks (_sqlite_checks).
        op.add_column("attendees", sa.Column("party_id", sa.Integer(), nullable=True))
    for column in ATTENDEE_COLUMNS:
        op.add_column("attendees", column)
    if postgres:
        _postgresql_checks(upgrade=True)
    else:
        _sqlite_checks(upgrade=True)
    op.drop_index(EMAIL_INDEX, table_name="attendees")
    _email_index("status <> 'cancelled' AND party_id IS NULL")
    op.create_index("ix_attendees_party", "attendees", ["party_id"], unique=False)
    _count_existing()
    for statement in POSTGRESQL_CREATE if postgres else SQLITE_CREATE:
        op.execute(statement)


def downgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRESQL_DROP if postgres else SQLITE_DROP:
        op.execute(statement)
    op.execute("DELETE FROM tallies WHERE kind IN ('virtual', 'answer')")
    op.drop_index("ix_attendees_party", table_name="attendees")
    op.drop_index(EMAIL_INDEX, table_name="attendees")
    _email_index("status <> 'cancelled'")
    if postgres:
        _postgresql_checks(upgrade=False)
        op.drop_constraint(op.f(PARTY_FK), "attendees", type_="foreignkey")
    else:
        _sqlite_checks(upgrade=False)
    for column in [*ATTENDEE_COLUMNS, sa.Column("party_id", sa.Integer())]:
        op.drop_column("attendees", column.name)
    for column in EVENT_COLUMNS:
        op.drop_column("events", column.name)
    before = _migration(10, "places_and_tallies")
    for statement in before.POSTGRESQL_CREATE if postgres else before.SQLITE_CREATE:
        op.execute(statement)
