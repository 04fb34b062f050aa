from tests.conftest import login, make_user


def test_login_and_account_page(client):
    make_user()
    response = login(client)
    assert response.status_code == 302
    page = client.get("/konto/")
    assert page.status_code == 200
    assert "Anna Andersson" in page.get_data(as_text=True)
