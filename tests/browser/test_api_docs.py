"""/api/docs in a real browser under its Content-Security-Policy: Swagger UI starts from its own files
(no inline script), lists the operations, and the browser reports no blocked resource or script error."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_the_api_docs_render_under_their_content_security_policy(page, console_errors):
    from playwright.sync_api import expect

    response = page.goto("/api/docs")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.get_by_text("/api/v1/auth/token", exact=True)).to_be_visible()
    expect(page.locator(".opblock").first).to_be_visible()
    assert not console_errors
