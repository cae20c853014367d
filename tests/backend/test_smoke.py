"""Smoke: the app starts, the schema is migrated, the OpenAPI document lists the dosing endpoints."""


def test_openapi_lists_participant_schedule_and_dose_endpoints(client):
    spec = client.get("/api/openapi.json").get_json()
    paths = spec["paths"]
    assert "/api/v1/participants" in paths
    assert "/api/v1/participants/{participant_id}/doses" in paths
    assert "/api/v1/participants/{participant_id}/doses/{seq}/report" in paths
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and b"swagger" in docs.data.lower()


def test_the_migrations_build_exactly_the_schema_the_models_describe(tmp_path):
    # A model change without its migration (or the reverse) would pass every other test on a
    # freshly migrated database and then differ in production.
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine
    from sqlmodel import SQLModel

    from tests.conftest import fresh_database_url, migrate_database

    with fresh_database_url(tmp_path) as url:
        migrate_database(url, tmp_path)
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                context = MigrationContext.configure(conn, opts={"compare_type": True})
                differences = compare_metadata(context, SQLModel.metadata)
        finally:
            engine.dispose()
    assert differences == []
