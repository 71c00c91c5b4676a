"""Alembic environment, run by Flask-Migrate inside the app: the app gives the engine."""

from alembic import context
from flask import current_app

from necreg.database import include_object_for

config = context.config
db = current_app.extensions["migrate"].db


def run_migrations_offline() -> None:
    context.configure(
        url=db.engine.url.render_as_string(hide_password=False),
        target_metadata=db.metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    def skip_empty(ctx, revision, directives):
        # `necreg db migrate` with no model change writes no empty revision.
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []

    options = dict(current_app.extensions["migrate"].configure_args)
    options.setdefault("process_revision_directives", skip_empty)
    options.setdefault("compare_type", True)
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    options.setdefault("render_as_batch", True)
    with db.engine.connect() as connection:
        # Indexes the models make only on the other database are not missing here.
        options.setdefault("include_object", include_object_for(connection.dialect.name))
        context.configure(connection=connection, target_metadata=db.metadata, **options)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
