"""Schema-driven fuzzing shared by the HTTP services' tests: every operation of an OpenAPI schema (schemathesis),
each with and without a key, must answer below 500."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def fuzz_every_operation(schema, key: str, examples: int = 20, skip: tuple[str, ...] = ()) -> tuple[list[str], list[int]]:
    """Fuzz each operation whose path ends with none of `skip`; returns the operations checked and every status."""
    checked: list[str] = []
    statuses: list[int] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.endswith(skip):
            continue

        @given(case=operation.as_strategy(), with_key=st.booleans())
        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def no_server_error(case, with_key):
            # With the key the fuzz reaches past authentication into every route's own validation and logic.
            response = case.call(headers={"Authorization": f"Bearer {key}"} if with_key else {})
            statuses.append(response.status_code)
            assert response.status_code < 500, (case.method, case.formatted_path, response.status_code, response.text[:300])

        no_server_error()
        checked.append(f"{operation.method.upper()} {operation.path}")
    return checked, statuses
