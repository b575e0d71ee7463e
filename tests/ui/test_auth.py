"""The CreditBot pages inside Airflow's whole API server app, with the real SimpleAuthManager.

Airflow does not authenticate plugin apps by itself: these tests prove that ours asks the auth
manager, for every route, whether the user may read the ``credit_bot`` DAG.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.ui.conftest import NOW_TS, RUN_DIR, entry, write_notebook

NAME = "C0CREDITTEST-1796190000.000100-0.ipynb"
ROUTES = ["/credit-bot/", f"/credit-bot/notebooks/{RUN_DIR}/{NAME}"]


@pytest.fixture(scope="module")
def airflow_app() -> Iterator[TestClient]:
    from airflow.api_fastapi.app import create_app, purge_cached_app

    # The API server signs its tokens with this; every deployment sets one (a fake one here).
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "fake-jwt-signing-secret-for-tests-" * 2)
        purge_cached_app()
        with TestClient(create_app(), raise_server_exceptions=False) as client:
            yield client
        purge_cached_app()


def _token(role: str | None, username: str = "someone") -> str:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=username, role=role))


@pytest.fixture
def notebook(deployment_env, output_dir) -> None:
    write_notebook(output_dir, NAME)
    deployment_env([entry(NOW_TS, "answered", amount="4948.80")])


def test_the_auth_manager_is_simple_auth_manager(airflow_app) -> None:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    assert isinstance(get_auth_manager(), SimpleAuthManager)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    ("headers", "status", "says"),
    [
        pytest.param({}, 401, "Not signed in", id="unauthenticated"),
        pytest.param({"Authorization": "Bearer not-a-jwt"}, 403, "not allowed", id="invalid-token"),
        # SimpleAuthManager lets every role read DAGs; a user without a role reads none.
        pytest.param(
            "no-role", 403, "not allowed to read the credit_bot DAG", id="signed-in-without-dag-access"
        ),
    ],
)
def test_refused_without_read_access_to_the_dag(airflow_app, notebook, route, headers, status, says) -> None:
    if headers == "no-role":
        headers = {"Authorization": f"Bearer {_token(None)}"}
    response = airflow_app.get(route, headers=headers)
    assert response.status_code == status
    assert says in response.text
    assert "4,948.80" not in response.text
    assert "default-src 'none'" in response.headers["content-security-policy"]


@pytest.mark.parametrize("role", ["viewer", "user", "op", "admin"])
def test_a_user_who_may_read_the_dag_sees_both_pages(airflow_app, notebook, role) -> None:
    headers = {"Authorization": f"Bearer {_token(role)}"}
    page = airflow_app.get("/credit-bot/", headers=headers)
    assert page.status_code == 200
    assert "$4,948.80" in page.text
    view = airflow_app.get(f"/credit-bot/notebooks/{RUN_DIR}/{NAME}", headers=headers)
    assert view.status_code == 200
    assert "credit_amount = 4948.80" in view.text


def test_the_ui_session_cookie_is_enough(airflow_app, notebook) -> None:
    """The page opens in an iframe inside the UI: the browser sends the UI's cookie, not a header."""
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

    airflow_app.cookies.set(COOKIE_NAME_JWT_TOKEN, _token("viewer"))
    try:
        assert airflow_app.get("/credit-bot/").status_code == 200
    finally:
        airflow_app.cookies.clear()
    assert airflow_app.get("/credit-bot/").status_code == 401


def test_an_unknown_address_is_a_plain_404(airflow_app, notebook) -> None:
    response = airflow_app.get("/credit-bot/no-such-page")
    assert response.status_code == 404
    assert "4,948.80" not in response.text


def test_every_route_of_the_app_depends_on_the_auth_check() -> None:
    """A route added later cannot ship open: the dependency is on the app, not on each route."""
    from credit_bot.ui.app import create_app

    app = create_app()
    assert [d.dependency for d in app.router.dependencies] == [app.state.authorize]
