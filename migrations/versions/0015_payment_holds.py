"""Places held until paid for (issue 13): status ``pending_payment`` and ``payment_due_at``.

- ``attendees.status`` may be ``pending_payment``: the registration holds a place (counted by
  every cap) until ``payment_due_at``; an index finds the holds due soonest.
- ``tallies``: kind ``hold`` (places held unpaid, by ``<attendance>:<role>``).
- The triggers of 0012 are replaced (a held place is claimed like a confirmed one and stays
  put when it is paid for; a pool over its cap counts the held places): their SQL is frozen
  here as it was written in necreg/triggers.py at this revision.

SQLite's constraints change in the table's stored definition, as 0012 explains; every row
already there satisfies the new checks.

Revision ID: 0015_payment_holds
Revises: 0014_payments_and_receipts
"""

import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0015_payment_holds"
down_revision = "0014_payments_and_receipts"
branch_labels = None
depends_on = None

OLD_STATUS_CHECK = "CHECK (status IN ('confirmed', 'waitlisted', 'cancelled'))"
NEW_STATUS_CHECK = "CHECK (status IN ('confirmed', 'pending_payment', 'waitlisted', 'cancelled'))"
OLD_KINDS_CHECK = (
    "CHECK (kind IN ('status', 'day', 'role', 'country', 'institution', 'early_career',"
    " 'checked_in', 'virtual', 'answer', 'version'))"
)
NEW_KINDS_CHECK = (
    "CHECK (kind IN ('status', 'day', 'role', 'country', 'institution', 'early_career',"
    " 'checked_in', 'virtual', 'answer', 'hold', 'version'))"
)
#: Checks this revision changes: (table, name, before, after).
CHANGED_CHECKS = [
    ("attendees", "ck_attendees_status_known", OLD_STATUS_CHECK, NEW_STATUS_CHECK),
    ("tallies", "ck_tallies_kind_known", OLD_KINDS_CHECK, NEW_KINDS_CHECK),
]
DUE_INDEX = "ix_attendees_payment_due"
PENDING = "status = 'pending_payment'"

SQLITE_CREATE = [
    """CREATE TRIGGER attendees_tally_insert AFTER INSERT ON attendees BEGIN
    SELECT RAISE(ABORT, 'necreg: no room in role') WHERE NEW.status IN ('confirmed', 'pending_payment') AND NEW.takes_place AND EXISTS
        (SELECT 1 FROM place_pools p WHERE p.event_id = NEW.event_id AND p.name = 'role:' || NEW.role AND NEW.attendance = 'in_person'
         AND NOT EXISTS (SELECT 1 FROM place_slots s
         WHERE s.pool_id = p.id AND s.attendee_id IS NULL));
    SELECT RAISE(ABORT, 'necreg: no room in event') WHERE NEW.status IN ('confirmed', 'pending_payment') AND NEW.takes_place AND EXISTS
        (SELECT 1 FROM place_pools p WHERE p.event_id = NEW.event_id AND p.name = 'event' AND NEW.attendance = 'in_person'
         AND NOT EXISTS (SELECT 1 FROM place_slots s
         WHERE s.pool_id = p.id AND s.attendee_id IS NULL));
    SELECT RAISE(ABORT, 'necreg: no room in virtual') WHERE NEW.status IN ('confirmed', 'pending_payment') AND NEW.takes_place AND EXISTS
        (SELECT 1 FROM place_pools p WHERE p.event_id = NEW.event_id AND p.name = 'virtual' AND NEW.attendance = 'virtual'
         AND NOT EXISTS (SELECT 1 FROM place_slots s
         WHERE s.pool_id = p.id AND s.attendee_id IS NULL));
    UPDATE place_slots SET attendee_id = NEW.id WHERE NEW.status IN ('confirmed', 'pending_payment') AND NEW.takes_place AND id IN
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
        UNION ALL SELECT NEW.event_id, 'virtual', NEW.role, 1 WHERE NEW.status = 'confirmed' AND NEW.takes_place AND NEW.attendance = 'virtual'
        UNION ALL SELECT NEW.event_id, 'hold', NEW.attendance || ':' || NEW.role, 1 WHERE NEW.status = 'pending_payment' AND NEW.takes_place) GROUP BY e, k, v HAVING sum(d) <> 0)
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
        UNION ALL SELECT NEW.event_id, 'virtual', NEW.role, 1 WHERE NEW.status = 'confirmed' AND NEW.takes_place AND NEW.attendance = 'virtual'
        UNION ALL SELECT NEW.event_id, 'hold', NEW.attendance || ':' || NEW.role, 1 WHERE NEW.status = 'pending_payment' AND NEW.takes_place) GROUP BY e, k, v HAVING sum(d) <> 0)
        WHERE 1 GROUP BY e
        ON CONFLICT (event_id, kind, key, shard)
        DO UPDATE SET n = n + 1, changed_at = excluded.changed_at;
END""",
    """CREATE TRIGGER attendees_tally_delete AFTER DELETE ON attendees BEGIN
    DELETE FROM place_slots WHERE OLD.status IN ('confirmed', 'pending_payment') AND attendee_id = OLD.id AND pool_id IN
        (SELECT p.id FROM place_pools p WHERE p.event_id = OLD.event_id AND p.capacity < (SELECT coalesce(sum(CASE WHEN p.name = 'virtual' OR t.kind <> 'virtual' THEN t.n ELSE -t.n END), 0) FROM tallies t WHERE t.event_id = p.event_id AND ((p.name = 'virtual' AND (t.kind = 'virtual' OR (t.kind = 'hold' AND substr(t.key, 1, 8) = 'virtual:'))) OR ((p.name = 'event' OR p.name = 'role:' || t.key) AND t.kind IN ('role', 'virtual')) OR (t.kind = 'hold' AND (p.name = 'event' AND substr(t.key, 1, 10) = 'in_person:' OR t.key = 'in_person:' || substr(p.name, 6))))));
    UPDATE place_slots SET attendee_id = NULL WHERE OLD.status IN ('confirmed', 'pending_payment') AND attendee_id = OLD.id;
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
        UNION ALL SELECT OLD.event_id, 'hold', OLD.attendance || ':' || OLD.role, -1 WHERE OLD.status = 'pending_payment' AND OLD.takes_place) GROUP BY e, k, v HAVING sum(d) <> 0)
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
        UNION ALL SELECT OLD.event_id, 'hold', OLD.attendance || ':' || OLD.role, -1 WHERE OLD.status = 'pending_payment' AND OLD.takes_place) GROUP BY e, k, v HAVING sum(d) <> 0)
        WHERE 1 GROUP BY e
        ON CONFLICT (event_id, kind, key, shard)
        DO UPDATE SET n = n + 1, changed_at = excluded.changed_at;
END""",
    """CREATE TRIGGER attendees_tally_update AFTER UPDATE OF status, role, event_id, country, institution, early_career, checked_in_at, created_at, attendance, takes_place ON attendees BEGIN
    DELETE FROM place_slots WHERE OLD.status IN ('confirmed', 'pending_payment') AND (NOT NEW.status IN ('confirmed', 'pending_payment') OR NEW.role <> OLD.role OR NEW.event_id <> OLD.event_id OR NEW.attendance <> OLD.attendance OR NEW.takes_place <> OLD.takes_place) AND attendee_id = OLD.id AND pool_id IN
        (SELECT p.id FROM place_pools p WHERE p.event_id = OLD.event_id AND p.capacity < (SELECT coalesce(sum(CASE WHEN p.name = 'virtual' OR t.kind <> 'virtual' THEN t.n ELSE -t.n END), 0) FROM tallies t WHERE t.event_id = p.event_id AND ((p.name = 'virtual' AND (t.kind = 'virtual' OR (t.kind = 'hold' AND substr(t.key, 1, 8) = 'virtual:'))) OR ((p.name = 'event' OR p.name = 'role:' || t.key) AND t.kind IN ('role', 'virtual')) OR (t.kind = 'hold' AND (p.name = 'event' AND substr(t.key, 1, 10) = 'in_person:' OR t.key = 'in_person:' || substr(p.name, 6))))));
    UPDATE place_slots SET attendee_id = NULL WHERE OLD.status IN ('confirmed', 'pending_payment') AND (NOT NEW.status IN ('confirmed', 'pending_payment') OR NEW.role <> OLD.role OR NEW.event_id <> OLD.event_id OR NEW.attendance <> OLD.attendance OR NEW.takes_place <> OLD.takes_place) AND attendee_id = OLD.id;
    SELECT RAISE(ABORT, 'necreg: no room in role') WHERE NEW.status IN ('confirmed', 'pending_payment') AND NEW.takes_place AND (NOT OLD.status IN ('confirmed', 'pending_payment') OR (NOT NEW.status IN ('confirmed', 'pending_payment') OR NEW.role <> OLD.role OR NEW.event_id <> OLD.event_id OR NEW.attendance <> OLD.attendance OR NEW.takes_place <> OLD.takes_place)) AND EXISTS
        (SELECT 1 FROM place_pools p WHERE p.event_id = NEW.event_id AND p.name = 'role:' || NEW.role AND NEW.attendance = 'in_person'
         AND NOT EXISTS (SELECT 1 FROM place_slots s
         WHERE s.pool_id = p.id AND s.attendee_id IS NULL));
    SELECT RAISE(ABORT, 'necreg: no room in event') WHERE NEW.status IN ('confirmed', 'pending_payment') AND NEW.takes_place AND (NOT OLD.status IN ('confirmed', 'pending_payment') OR (NOT NEW.status IN ('confirmed', 'pending_payment') OR NEW.role <> OLD.role OR NEW.event_id <> OLD.event_id OR NEW.attendance <> OLD.attendance OR NEW.takes_place <> OLD.takes_place)) AND EXISTS
        (SELECT 1 FROM place_pools p WHERE p.event_id = NEW.event_id AND p.name = 'event' AND NEW.attendance = 'in_person'
         AND NOT EXISTS (SELECT 1 FROM place_slots s
         WHERE s.pool_id = p.id AND s.attendee_id IS NULL));
    SELECT RAISE(ABORT, 'necreg: no room in virtual') WHERE NEW.status IN ('confirmed', 'pending_payment') AND NEW.takes_place AND (NOT OLD.status IN ('confirmed', 'pending_payment') OR (NOT NEW.status IN ('confirmed', 'pending_payment') OR NEW.role <> OLD.role OR NEW.event_id <> OLD.event_id OR NEW.attendance <> OLD.attendance OR NEW.takes_place <> OLD.takes_place)) AND EXISTS
        (SELECT 1 FROM place_pools p WHERE p.event_id = NEW.event_id AND p.name = 'virtual' AND NEW.attendance = 'virtual'
         AND NOT EXISTS (SELECT 1 FROM place_slots s
         WHERE s.pool_id = p.id AND s.attendee_id IS NULL));
    UPDATE place_slots SET attendee_id = NEW.id WHERE NEW.status IN ('confirmed', 'pending_payment') AND NEW.takes_place AND (NOT OLD.status IN ('confirmed', 'pending_payment') OR (NOT NEW.status IN ('confirmed', 'pending_payment') OR NEW.role <> OLD.role OR NEW.event_id <> OLD.event_id OR NEW.attendance <> OLD.attendance OR NEW.takes_place <> OLD.takes_place)) AND id IN
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
        UNION ALL SELECT OLD.event_id, 'hold', OLD.attendance || ':' || OLD.role, -1 WHERE OLD.status = 'pending_payment' AND OLD.takes_place
        UNION ALL SELECT OLD.event_id, 'answer', CAST(a.question_id AS TEXT) || ':' || a.choice, -1 FROM answers a WHERE a.attendee_id = OLD.id AND a.choice IS NOT NULL AND OLD.status = 'confirmed'
                UNION ALL SELECT NEW.event_id, 'status', NEW.status, 1 WHERE 1 = 1
        UNION ALL SELECT NEW.event_id, 'day', substr(NEW.created_at, 1, 10), 1 WHERE 1 = 1
        UNION ALL SELECT NEW.event_id, 'role', NEW.role, 1 WHERE NEW.status = 'confirmed' AND NEW.takes_place
        UNION ALL SELECT NEW.event_id, 'country', NEW.country, 1 WHERE NEW.status = 'confirmed'
        UNION ALL SELECT NEW.event_id, 'institution', trim(NEW.institution), 1 WHERE NEW.status = 'confirmed' AND trim(NEW.institution) <> ''
        UNION ALL SELECT NEW.event_id, 'early_career', '', 1 WHERE NEW.status = 'confirmed' AND NEW.early_career
        UNION ALL SELECT NEW.event_id, 'checked_in', '', 1 WHERE NEW.status = 'confirmed' AND NEW.checked_in_at IS NOT NULL
        UNION ALL SELECT NEW.event_id, 'virtual', NEW.role, 1 WHERE NEW.status = 'confirmed' AND NEW.takes_place AND NEW.attendance = 'virtual'
        UNION ALL SELECT NEW.event_id, 'hold', NEW.attendance || ':' || NEW.role, 1 WHERE NEW.status = 'pending_payment' AND NEW.takes_place
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
        UNION ALL SELECT OLD.event_id, 'hold', OLD.attendance || ':' || OLD.role, -1 WHERE OLD.status = 'pending_payment' AND OLD.takes_place
        UNION ALL SELECT OLD.event_id, 'answer', CAST(a.question_id AS TEXT) || ':' || a.choice, -1 FROM answers a WHERE a.attendee_id = OLD.id AND a.choice IS NOT NULL AND OLD.status = 'confirmed'
                UNION ALL SELECT NEW.event_id, 'status', NEW.status, 1 WHERE 1 = 1
        UNION ALL SELECT NEW.event_id, 'day', substr(NEW.created_at, 1, 10), 1 WHERE 1 = 1
        UNION ALL SELECT NEW.event_id, 'role', NEW.role, 1 WHERE NEW.status = 'confirmed' AND NEW.takes_place
        UNION ALL SELECT NEW.event_id, 'country', NEW.country, 1 WHERE NEW.status = 'confirmed'
        UNION ALL SELECT NEW.event_id, 'institution', trim(NEW.institution), 1 WHERE NEW.status = 'confirmed' AND trim(NEW.institution) <> ''
        UNION ALL SELECT NEW.event_id, 'early_career', '', 1 WHERE NEW.status = 'confirmed' AND NEW.early_career
        UNION ALL SELECT NEW.event_id, 'checked_in', '', 1 WHERE NEW.status = 'confirmed' AND NEW.checked_in_at IS NOT NULL
        UNION ALL SELECT NEW.event_id, 'virtual', NEW.role, 1 WHERE NEW.status = 'confirmed' AND NEW.takes_place AND NEW.attendance = 'virtual'
        UNION ALL SELECT NEW.event_id, 'hold', NEW.attendance || ':' || NEW.role, 1 WHERE NEW.status = 'pending_payment' AND NEW.takes_place
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
        (SELECT p.id FROM place_pools p WHERE p.event_id = e AND p.capacity < (SELECT coalesce(sum(CASE WHEN p.name = 'virtual' OR t.kind <> 'virtual' THEN t.n ELSE -t.n END), 0) FROM tallies t WHERE t.event_id = p.event_id AND ((p.name = 'virtual' AND (t.kind = 'virtual' OR (t.kind = 'hold' AND substr(t.key, 1, 8) = 'virtual:'))) OR ((p.name = 'event' OR p.name = 'role:' || t.key) AND t.kind IN ('role', 'virtual')) OR (t.kind = 'hold' AND (p.name = 'event' AND substr(t.key, 1, 10) = 'in_person:' OR t.key = 'in_person:' || substr(p.name, 6))))));
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
    IF TG_OP <> 'INSERT' AND OLD.status IN ('confirmed', 'pending_payment')
            AND (TG_OP = 'DELETE' OR (NOT NEW.status IN ('confirmed', 'pending_payment') OR NEW.role <> OLD.role OR NEW.event_id <> OLD.event_id OR NEW.attendance <> OLD.attendance OR NEW.takes_place <> OLD.takes_place)) THEN
        PERFORM places_release(OLD.id, OLD.event_id);
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.status IN ('confirmed', 'pending_payment') AND NEW.takes_place AND (TG_OP = 'INSERT'
            OR NOT OLD.status IN ('confirmed', 'pending_payment') OR (NOT NEW.status IN ('confirmed', 'pending_payment') OR NEW.role <> OLD.role OR NEW.event_id <> OLD.event_id OR NEW.attendance <> OLD.attendance OR NEW.takes_place <> OLD.takes_place)) THEN
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
        UNION ALL SELECT OLD.event_id, 'virtual', OLD.role, -1 WHERE OLD.status = 'confirmed' AND OLD.takes_place AND OLD.attendance = 'virtual'
        UNION ALL SELECT OLD.event_id, 'hold', OLD.attendance || ':' || OLD.role, -1 WHERE OLD.status = 'pending_payment' AND OLD.takes_place) o WHERE TG_OP <> 'INSERT'
            UNION ALL SELECT * FROM (
                SELECT NEW.event_id, 'status', NEW.status, 1 WHERE 1 = 1
        UNION ALL SELECT NEW.event_id, 'day', to_char(NEW.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), 1 WHERE 1 = 1
        UNION ALL SELECT NEW.event_id, 'role', NEW.role, 1 WHERE NEW.status = 'confirmed' AND NEW.takes_place
        UNION ALL SELECT NEW.event_id, 'country', NEW.country, 1 WHERE NEW.status = 'confirmed'
        UNION ALL SELECT NEW.event_id, 'institution', trim(NEW.institution), 1 WHERE NEW.status = 'confirmed' AND trim(NEW.institution) <> ''
        UNION ALL SELECT NEW.event_id, 'early_career', '', 1 WHERE NEW.status = 'confirmed' AND NEW.early_career
        UNION ALL SELECT NEW.event_id, 'checked_in', '', 1 WHERE NEW.status = 'confirmed' AND NEW.checked_in_at IS NOT NULL
        UNION ALL SELECT NEW.event_id, 'virtual', NEW.role, 1 WHERE NEW.status = 'confirmed' AND NEW.takes_place AND NEW.attendance = 'virtual'
        UNION ALL SELECT NEW.event_id, 'hold', NEW.attendance || ':' || NEW.role, 1 WHERE NEW.status = 'pending_payment' AND NEW.takes_place) n WHERE TG_OP <> 'DELETE'
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

def _migration(number: int, name: str):
    path = Path(__file__).with_name(f"{number:04d}_{name}.py")
    spec = importlib.util.spec_from_file_location(f"migration_{number:04d}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _change_checks(upgrade: bool) -> None:
    """The changed checks, in SQLite's stored definitions or PostgreSQL's constraints."""
    households = _migration(12, "households_attendance")
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, name, before, after in CHANGED_CHECKS:
        old, new = (before, after) if upgrade else (after, before)
        if postgres:
            op.drop_constraint(op.f(name), table, type_="check")
            op.create_check_constraint(op.f(name), table, new.removeprefix("CHECK (")[:-1])
        else:
            households._rewrite_sqlite_table(
                table, [(households._check_sql(name, old), households._check_sql(name, new))]
            )


def upgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    before = _migration(12, "households_attendance")
    for statement in before.POSTGRESQL_DROP if postgres else before.SQLITE_DROP:
        op.execute(statement)
    op.add_column("attendees", sa.Column("payment_due_at", sa.DateTime(timezone=True)))
    _change_checks(upgrade=True)
    op.create_index(
        DUE_INDEX,
        "attendees",
        ["payment_due_at"],
        sqlite_where=sa.text(PENDING),
        postgresql_where=sa.text(PENDING),
    )
    for statement in POSTGRESQL_CREATE if postgres else SQLITE_CREATE:
        op.execute(statement)


def downgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in before_drop(postgres):
        op.execute(statement)
    # A place held unpaid cannot be told apart once the status is gone: it was not paid for.
    op.execute("UPDATE attendees SET status = 'cancelled' WHERE status = 'pending_payment'")
    op.execute("DELETE FROM tallies WHERE kind = 'hold'")
    op.drop_index(DUE_INDEX, table_name="attendees")
    _change_checks(upgrade=False)
    op.drop_column("attendees", "payment_due_at")
    households = _migration(12, "households_attendance")
    for statement in households.POSTGRESQL_CREATE if postgres else households.SQLITE_CREATE:
        op.execute(statement)


def before_drop(postgres: bool) -> list[str]:
    """The statements that remove this revision's triggers (the same names as 0012's)."""
    households = _migration(12, "households_attendance")
    return households.POSTGRESQL_DROP if postgres else households.SQLITE_DROP
