"""E-mail: messages queued in the outbox with the change that causes them, and their delivery.

``outbox`` builds messages from ``templates/emails/`` and queues them; ``ics`` makes the
calendar attachment; ``delivery`` holds the backends (SMTP, .eml files); ``worker`` claims and
delivers due messages with retries.
"""
