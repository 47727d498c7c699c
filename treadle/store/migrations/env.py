"""Alembic's entry point for Treadle's migrations (see ``treadle/store/migrate.py``).

Run with a SQLAlchemy connection in ``config.attributes["connection"]`` (how Treadle
upgrades on start), or with ``sqlalchemy.url`` set (a developer's ``revision``).
"""

from __future__ import annotations

from alembic import context

from treadle.store.schema import metadata

config = context.config


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=metadata,
        compare_type=True,
        transactional_ddl=True,
        **kwargs,
    )


def run_offline() -> None:
    url = config.get_main_option("sqlalchemy.url")
    _configure(url=url, literal_binds=True, render_as_batch=str(url).startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    from treadle.store.migrate import make_engine

    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.begin() as conn:
            _run_on(conn)
    finally:
        engine.dispose()


def _run_on(connection: object) -> None:
    _configure(
        connection=connection,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
