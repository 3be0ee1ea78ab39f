"""The console in a real browser: search, a customer page, a PDF, a dead-letter replay, a refused forged post."""

from __future__ import annotations

from typing import Any

import pytest

from shared import clients
from tests.browser.conftest import Served, shot
from tests.fixtures.console_world import seed_dead_letter
from tests.helpers import drain_messages

pytestmark = pytest.mark.filterwarnings("ignore:The return_immediately flag:DeprecationWarning")


def test_search_by_name_leads_to_the_customer_page(page: Any, served: Served) -> None:
    page.goto("/")
    page.get_by_label("Customer, subscription, invoice number, PSP reference, event id, name or email").fill("Camille")
    page.keyboard.press("Enter")
    page.wait_for_url("**/?q=Camille")
    shot(page, "search")
    page.get_by_role("link", name="cus_fr").first.click()
    page.wait_for_url("**/customers/cus_fr")
    for heading in ("Subscriptions", "Invoices and credit notes", "Payments and refunds", "Disputes"):
        assert page.get_by_role("heading", name=heading).is_visible()
    assert page.get_by_role("link", name=served.world.numbers[0], exact=True).is_visible()
    unlabeled = page.evaluate(
        "[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]"
        ".filter(e => !e.labels || e.labels.length === 0).length"
    )
    assert unlabeled == 0
    shot(page, "customer")
    page.get_by_role("link", name="canonical events and archived webhooks of pi_0000").click()
    page.wait_for_url("**/payments/**")
    assert page.get_by_role("heading", name="Canonical events and archived webhooks").is_visible()
    assert page.get_by_role("link", name="archived webhook evt_0000_00").is_visible()
    shot(page, "payment")


def test_opening_an_invoice_pdf(page: Any, served: Served) -> None:
    page.goto(f"/invoices/{served.world.invoices[0]}")
    shot(page, "invoice")
    link = page.get_by_role("link", name="Open PDF", exact=True)
    href = link.get_attribute("href")
    response = page.request.get(str(href))  # what the link opens, fetched with the page's own session
    assert response.status == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.body().startswith(b"%PDF")
    assert "inline" in response.headers["content-disposition"]


def test_replaying_a_dead_letter_after_confirmation(page: Any, served: Served) -> None:
    # The emulator numbers messages 1, 2, ...: a short id is a substring of any timestamp on the page, and may
    # equal a count on it (the webhook volumes, the letter's own delivery count of 5): look in the id column only.
    message_id, check = seed_dead_letter(served.world.project)
    page.goto("/operations")
    ids = page.locator("table.dlq tbody td:first-child")
    assert ids.get_by_text(message_id, exact=True).is_visible()
    shot(page, "operations")
    page.get_by_role("link", name="Replay…").first.click()
    page.wait_for_url("**/confirm/deadletters.replay**")
    shot(page, "confirm-replay")
    dialogs: list[str] = []

    def answer(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)
    button = page.get_by_role("button", name="Replay dead letters")
    button.click()  # the required confirmation checkbox is not ticked: the browser refuses to submit
    assert page.url.endswith(f"message_id={message_id}")
    page.get_by_label("I confirm: replay dead letters").check()
    button.click()
    page.wait_for_url("**/actions/deadletters.replay")
    assert page.get_by_text("Done.").is_visible()
    assert dialogs == ["Replay dead letters?"]
    (msg,) = drain_messages(check)
    assert msg.attributes["event_type"] == "probe.requested"
    (entry,) = [s.to_dict() or {} for s in clients.firestore().collection("console_audit").stream()]
    assert entry["result"]["replayed"] == [message_id]
    page.goto("/operations")
    assert ids.get_by_text(message_id, exact=True).count() == 0
    assert page.get_by_role("heading", name="Dead letters").is_visible()  # the page itself is there


def test_an_action_without_its_csrf_token_is_refused(page: Any, served: Served) -> None:
    page.goto(f"/confirm/invoice.void?invoice_id={served.world.invoices[0]}")
    page.evaluate("document.querySelector('input[name=csrf_token]').remove()")
    page.get_by_label("Reason").fill("issued in error")
    page.get_by_label("I confirm: void invoice").check()
    page.on("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Void invoice").click()
    page.wait_for_url("**/actions/invoice.void")
    alert = page.get_by_role("alert")
    assert alert.get_attribute("data-code") == "csrf_refused"
    shot(page, "refused-csrf")
    doc = clients.firestore().collection("invoices").document(served.world.invoices[0]).get().to_dict() or {}
    assert doc["status"] == "open"


def test_invoices_and_charts_pages_work_by_keyboard(page: Any, served: Served) -> None:
    page.goto("/invoices")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.get_by_label("Status").select_option("open")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/invoices?status=open**")
    assert page.get_by_role("link", name=served.world.numbers[2]).is_visible()
    shot(page, "invoices")
    page.goto("/charts")
    assert page.locator("svg[role=img]").count() == 4
    shot(page, "charts")
