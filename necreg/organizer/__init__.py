"""The organizer side of the site: sign-in, dashboard, settings, attendees, check-in, export."""
