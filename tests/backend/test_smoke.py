"""Smoke: the app starts, the schema is migrated, the OpenAPI document lists the dosing endpoints."""


def test_openapi_lists_participant_schedule_and_dose_endpoints(client):
    spec = client.get("/api/openapi.json").get_json()
    paths = spec["paths"]
    assert "/api/v1/participants" in paths
    assert "/api/v1/participants/{participant_id}/doses" in paths
    assert "/api/v1/participants/{participant_id}/doses/{seq}/report" in paths
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and b"swagger" in docs.data.lower()
