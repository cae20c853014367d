"""Flask-free: one keyword-only function per thing a person, a reply or a job does; each owns its whole effect."""
