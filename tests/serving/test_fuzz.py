"""Fuzz the REST API from its own OpenAPI schema: no input may produce a 5xx or break the schema."""

import pytest
from hypothesis import HealthCheck, given, settings

schemathesis = pytest.importorskip("schemathesis")


@pytest.fixture(scope="module")
def api(trained):
    from modelfab.serving.app import create_app

    ws, model = trained
    _, token = ws.create_token("fuzz")
    app = create_app(ws, [model.ref])
    return schemathesis.openapi.from_asgi("/openapi.json", app), token


def test_no_5xx_and_responses_match_schema(api):
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance

    schema, token = api
    operations = [op.ok() for op in schema.get_all_operations()]
    assert {o.path for o in operations} >= {"/v1/models/{name}/predict", "/v1/models", "/healthz"}
    for operation in operations:
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def run(case):
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"},
                                   checks=[not_a_server_error, response_schema_conformance])

        run()
