"""The YooKassa fake: `/v3/payments`, `/v3/refunds`, `/v3/payment_methods`, a checkout page and
test controls.

Saved methods (auto-payments): a payment created with `save_payment_method: true` saves the card
when it is paid on the checkout page (`payment_method.saved`, with the card's mask and expiry);
a payment created with `payment_method_id` is charged at once, without confirmation, and ends
`succeeded` or `canceled` with `cancellation_details.reason`: `card_expired` (the card's expiry
has passed, or `expire_card()`), `permission_revoked` (`revoke_method()`), or whatever
`decline(method id, reason)` set (e.g. `insufficient_funds`). Every such charge is recorded in
`charges` with its idempotence key and receipt.

Receipts (54-FZ, "Чеки от ЮKassa"): a payment created with a `receipt` gets a payment receipt
when it succeeds, and a refund of such a payment a refund receipt (the refund's own `receipt`,
or the payment's items); `GET /v3/receipts?payment_id=…` (or `refund_id=…`) lists them. A
receipt is registered at once (status `succeeded` with its ФН/ФД/ФП fiscal attributes), unless
`hold_receipts` is set: then it stays `pending` until `register_receipts()`. The customer a
receipt went to is kept in `receipt_customers` (the API's receipt object does not show it).
Refunds honour their Idempotence-Key like payments.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import json
import logging
import secrets
import uuid
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import aiohttp
from aiohttp import web

log = logging.getLogger(__name__)

_AMOUNT_KEYS = {"value", "currency"}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(status: int, code: str, description: str, parameter: str | None = None) -> web.Response:
    body: dict[str, Any] = {
        "type": "error",
        "id": str(uuid.uuid4()),
        "code": code,
        "description": description,
    }
    if parameter:
        body["parameter"] = parameter
    return web.json_response(body, status=status)


class _Invalid(Exception):
    def __init__(self, description: str, parameter: str) -> None:
        super().__init__(description)
        self.description = description
        self.parameter = parameter


def _amount(raw: Any, where: str) -> dict[str, str]:
    if not isinstance(raw, dict) or set(raw) != _AMOUNT_KEYS:
        raise _Invalid("amount must be {value, currency}", where)
    try:
        value = Decimal(str(raw["value"]))
    except InvalidOperation:
        raise _Invalid("amount.value is not a number", where) from None
    if value <= 0 or value != value.quantize(Decimal("0.01")):
        raise _Invalid("amount.value must be positive with two decimals", where)
    if raw["currency"] != "RUB":
        raise _Invalid("only RUB in this fake", where)
    return {"value": f"{value:.2f}", "currency": "RUB"}


class YooKassaFake:
    """Run with `await fake.start()`; point the SDK at `fake.api_url`."""

    def __init__(self, shop_id: str = "100500", secret_key: str = "test_fake_secret") -> None:  # noqa: S107 - a fake's made-up key
        self.shop_id = shop_id
        self.secret_key = secret_key
        self.payments: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, tuple[str, str]] = {}  # idempotence key -> (body sha, payment id)
        self.requests: list[tuple[str, str]] = []
        self.bodies: dict[str, dict[str, Any]] = {}  # payment id -> the request that made it
        self.methods: dict[str, dict[str, Any]] = {}  # saved payment methods, by id
        self.declines: dict[str, str] = {}  # method id -> reason its next charges fail with
        self.charges: list[dict[str, Any]] = []  # charges of saved methods, in order
        self.receipts: dict[str, dict[str, Any]] = {}  # receipt id -> the API's receipt object
        self.receipt_customers: dict[str, dict[str, Any]] = {}  # receipt id -> its customer
        self.hold_receipts = False  # new receipts stay pending until register_receipts()
        self.fiscal_storage = "9999078902004792"  # the fake's fiscal storage (ФН) number
        self._fiscal_documents = 0
        self.refund_keys: dict[str, tuple[str, str]] = {}  # idempotence key -> (sha, refund id)
        # The card the checkout page pays with (the next one saved).
        self.card = {"first6": "555555", "last4": "4444", "expiry_month": "07",
                     "expiry_year": "2031", "card_type": "MasterCard"}  # fmt: skip
        self.down = False  # every API call answers 500
        self.fail_next = 0  # this many next API calls answer 500, then it works again
        self.delay = 0.0  # seconds before every API answer
        self.webhook_url: str | None = None  # where the checkout page's "Pay" notifies
        # Local address the notifications leave from (tests: a YooKassa-like sender on this
        # host); None: the route's own (in a container, towards another container).
        self.notify_source: str | None = "127.0.0.1"
        self.notifications_sent: list[tuple[str, str, int]] = []  # (event, object id, status)
        self._runner: web.AppRunner | None = None
        self._port = 0

    # ------------------------------------------------------------------ lifecycle
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/v3"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/v3/payments", self._create_payment)
        app.router.add_get("/v3/payments/{id}", self._get_payment)
        app.router.add_post("/v3/refunds", self._create_refund)
        app.router.add_get("/v3/refunds/{id}", self._get_refund)
        app.router.add_get("/v3/refunds", self._list_refunds)
        app.router.add_get("/v3/receipts", self._list_receipts)
        app.router.add_get("/v3/payment_methods/{id}", self._get_method)
        app.router.add_get("/checkout/{id}", self._checkout)
        app.router.add_post("/checkout/{id}", self._checkout_pay)
        app.router.add_post("/_fake/payments/{id}/{action}", self._c_action)
        app.router.add_get("/_fake/payments", self._c_list)
        app.router.add_post("/_fake/notify", self._c_notify)
        app.router.add_post("/_fake/faults", self._c_faults)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self._port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> YooKassaFake:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ state changes
    def _payment(self, payment_id: str) -> dict[str, Any]:
        try:
            return self.payments[payment_id]
        except KeyError:
            raise KeyError(f"no payment {payment_id}") from None

    def succeed(self, payment_id: str) -> dict[str, Any]:
        """The owner paid on the checkout page (with `card`); the card is saved when the
        payment asked for it."""
        payment = self._payment(payment_id)
        if payment["status"] == "pending":
            if "payment_method" not in payment:
                save = bool(self.bodies.get(payment_id, {}).get("save_payment_method"))
                payment["payment_method"] = self._method(save)
            payment.update(
                status="succeeded",
                paid=True,
                captured_at=_now(),
                refundable=True,
                income_amount=dict(payment["amount"]),
            )
            self._issue_receipt(payment_id)
        return payment

    def _method(self, saved: bool) -> dict[str, Any]:
        # Its own id (not the payment's), so tests can tell where the method id went.
        method_id = f"pm-{uuid.uuid4()}"
        card = dict(self.card)
        method = {"type": "bank_card", "id": method_id, "saved": saved,
                  "title": f"Bank card *{card['last4']}", "card": card}  # fmt: skip
        if saved:
            self.methods[method_id] = {**method, "status": "active"}
        return method

    def decline(self, method_id: str, reason: str | None) -> None:
        """Charges of `method_id` fail with `reason` from now on (None: they succeed again)."""
        if reason is None:
            self.declines.pop(method_id, None)
        else:
            self.declines[method_id] = reason

    def revoke_method(self, method_id: str) -> None:
        """The card holder withdrew the permission (or the bank did): charges fail."""
        self.methods[method_id]["status"] = "inactive"

    def expire_card(self, method_id: str) -> None:
        self.methods[method_id]["card"].update(expiry_month="01", expiry_year="2020")

    def _charge_outcome(self, method: dict[str, Any]) -> str | None:
        """Why a charge of `method` fails now, or None."""
        if method["status"] != "active":
            return "permission_revoked"
        card = method["card"]
        expiry = (int(card["expiry_year"]), int(card["expiry_month"]))
        today = datetime.now(UTC)
        if expiry < (today.year, today.month):
            return "card_expired"
        return self.declines.get(method["id"])

    def cancel(self, payment_id: str) -> dict[str, Any]:
        payment = self._payment(payment_id)
        if payment["status"] == "pending":
            payment.update(
                status="canceled",
                cancellation_details={"party": "yoo_money", "reason": "expired_on_confirmation"},
            )
        return payment

    def refund(
        self, payment_id: str, receipt: dict[str, Any] | None = None, description: str = ""
    ) -> dict[str, Any]:
        """A full refund of a succeeded payment (the one made before, when there is one);
        returns the refund object. A payment that had a receipt gets a refund receipt: with
        `receipt`'s items and customer, or the payment's."""
        payment = self._payment(payment_id)
        if payment["status"] != "succeeded":
            raise ValueError(f"payment {payment_id} is {payment['status']}, not succeeded")
        for refund in self.refunds.values():
            if refund["payment_id"] == payment_id:
                return refund
        refund = {
            "id": f"rf{uuid.uuid4().hex[:34]}",
            "payment_id": payment_id,
            "status": "succeeded",
            "amount": dict(payment["amount"]),
            "created_at": _now(),
        }
        if description:
            refund["description"] = description[:250]
        self.refunds[refund["id"]] = refund
        payment.update(refunded_amount=dict(payment["amount"]), refundable=False)
        paid_with = self.bodies.get(payment_id, {}).get("receipt")
        if receipt is not None or paid_with is not None:
            self._new_receipt("refund", refund["id"], receipt or paid_with or {})
        return refund

    # ------------------------------------------------------------------ receipts
    def _issue_receipt(self, payment_id: str) -> None:
        """The payment receipt of a succeeded payment created with a `receipt`, once."""
        receipt = self.bodies.get(payment_id, {}).get("receipt")
        if receipt is None or self.receipts_of(payment_id):
            return
        self._new_receipt("payment", payment_id, receipt)

    def _new_receipt(self, kind: str, object_id: str, request: dict[str, Any]) -> None:
        items = [
            {key: item[key] for key in ("description", "quantity", "amount", "vat_code",
                                        "payment_mode", "payment_subject") if key in item}
            for item in request.get("items") or []
        ]  # fmt: skip
        total = sum(
            (Decimal(i["amount"]["value"]) * Decimal(str(i.get("quantity", "1"))) for i in items),
            Decimal("0"),
        )
        receipt_id = f"rt-{uuid.uuid4()}"
        receipt: dict[str, Any] = {
            "id": receipt_id,
            "type": kind,
            f"{kind}_id": object_id,
            "status": "pending",
            "items": items,
            "settlements": [
                {"type": "cashless", "amount": {"value": f"{total:.2f}", "currency": "RUB"}}
            ],
        }
        if request.get("tax_system_code") is not None:
            receipt["tax_system_code"] = request["tax_system_code"]
        self.receipts[receipt_id] = receipt
        self.receipt_customers[receipt_id] = dict(request.get("customer") or {})
        if not self.hold_receipts:
            self._register(receipt)

    def _register(self, receipt: dict[str, Any]) -> None:
        self._fiscal_documents += 1
        receipt.update(
            status="succeeded",
            fiscal_document_number=str(self._fiscal_documents),
            fiscal_storage_number=self.fiscal_storage,
            fiscal_attribute=str(1_000_000_000 + secrets.randbelow(9_000_000_000)),
            registered_at=_now(),
            fiscal_provider_id=str(uuid.uuid4()),
        )

    def register_receipts(self) -> int:
        """The fiscal registrar answered: every pending receipt is registered; how many."""
        pending = [r for r in self.receipts.values() if r["status"] == "pending"]
        for receipt in pending:
            self._register(receipt)
        return len(pending)

    def receipts_of(self, payment_id: str) -> list[dict[str, Any]]:
        """The payment receipts of `payment_id` (tests)."""
        return [r for r in self.receipts.values() if r.get("payment_id") == payment_id]

    def notification(self, event: str, object_id: str) -> dict[str, Any]:
        """The notification YooKassa would send for `event` about payment/refund `object_id`."""
        source = self.refunds if event.startswith("refund.") else self.payments
        return {"type": "notification", "event": event, "object": dict(source[object_id])}

    async def notify(
        self,
        url: str,
        event: str,
        object_id: str,
        *,
        source: str | None = "127.0.0.1",
        body: dict[str, Any] | bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> int:
        """POST a notification to `url` from the local address `source`; the HTTP status."""
        payload = body if body is not None else self.notification(event, object_id)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        connector = aiohttp.TCPConnector(
            local_addr=(source, 0) if source else None, force_close=True
        )
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.post(
                url,
                data=data,
                headers={"Content-Type": "application/json", **(headers or {})},
                timeout=aiohttp.ClientTimeout(total=30),
            ) as resp,
        ):
            await resp.read()
            self.notifications_sent.append((event, object_id, resp.status))
            return resp.status

    # ------------------------------------------------------------------ HTTP API
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith("/v3/"):
            response: web.StreamResponse = await handler(request)
            return response
        self.requests.append((request.method, request.path))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.down:
            return _error(500, "internal_server_error", "the fake is down")
        if self.fail_next > 0:
            self.fail_next -= 1
            return _error(500, "internal_server_error", "the fake has a bad moment")
        expected = (
            "Basic " + base64.b64encode(f"{self.shop_id}:{self.secret_key}".encode()).decode()
        )
        if not secrets.compare_digest(request.headers.get("Authorization", ""), expected):
            return _error(401, "invalid_credentials", "wrong shop id or secret key")
        response = await handler(request)
        return response

    async def _json(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _Invalid("the body is not JSON", "body") from None
        if not isinstance(body, dict):
            raise _Invalid("the body must be an object", "body")
        return body

    def _new_payment(self, body: dict[str, Any]) -> dict[str, Any]:
        amount = _amount(body.get("amount"), "amount")
        method_id = body.get("payment_method_id")
        confirmation = body.get("confirmation")
        if method_id is not None:
            if method_id not in self.methods:
                raise _Invalid("no saved payment method with this id", "payment_method_id")
            if confirmation is not None or body.get("save_payment_method"):
                raise _Invalid("a saved method is charged without confirmation", "confirmation")
        elif not isinstance(confirmation, dict) or confirmation.get("type") != "redirect":
            raise _Invalid("confirmation.type must be redirect in this fake", "confirmation")
        elif not confirmation.get("return_url"):
            raise _Invalid("confirmation.return_url is required", "confirmation.return_url")
        receipt = body.get("receipt")
        if receipt is not None:
            customer = receipt.get("customer") or {}
            if not customer.get("email") and not customer.get("phone"):
                raise _Invalid("receipt.customer needs an email or a phone", "receipt.customer")
            items = receipt.get("items") or []
            if not items:
                raise _Invalid("receipt.items is empty", "receipt.items")
            total = Decimal("0")
            for item in items:
                if item.get("vat_code") is None and receipt.get("tax_system_code") is None:
                    raise _Invalid("receipt item without vat_code", "receipt.items.vat_code")
                item_amount = _amount(item.get("amount"), "receipt.items.amount")
                total += Decimal(item_amount["value"]) * Decimal(str(item.get("quantity", "1")))
            if total != Decimal(amount["value"]):
                raise _Invalid("receipt items do not add up to the amount", "receipt.items")
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict) or len(metadata) > 16:
            raise _Invalid("metadata must be an object of at most 16 keys", "metadata")
        payment_id = f"2{uuid.uuid4().hex[1:8]}-000f-5000-9000-{uuid.uuid4().hex[:12]}"
        payment: dict[str, Any] = {
            "id": payment_id,
            "status": "pending",
            "paid": False,
            "amount": amount,
            "description": str(body.get("description") or "")[:128],
            "recipient": {"account_id": self.shop_id, "gateway_id": "100700"},
            "created_at": _now(),
            "test": True,
            "refundable": False,
            "metadata": {str(k): str(v) for k, v in metadata.items()},
        }
        if method_id is None:
            assert isinstance(confirmation, dict)
            payment["confirmation"] = {
                "type": "redirect",
                "return_url": confirmation["return_url"],
                "confirmation_url": f"{self.base_url}/checkout/{payment_id}",
            }
            return payment
        # A saved method: charged at once, no confirmation.
        method = self.methods[method_id]
        payment["payment_method"] = {k: v for k, v in method.items() if k != "status"}
        reason = self._charge_outcome(method)
        if reason is None:
            payment.update(status="succeeded", paid=True, captured_at=_now(), refundable=True,
                           income_amount=dict(amount))  # fmt: skip
        else:
            party = "yoo_money" if reason == "permission_revoked" else "payment_network"
            payment.update(status="canceled",
                           cancellation_details={"party": party, "reason": reason})  # fmt: skip
        return payment

    async def _create_payment(self, request: web.Request) -> web.Response:
        key = request.headers.get("Idempotence-Key")
        if not key or len(key) > 64:
            return _error(400, "invalid_request", "Idempotence-Key (1-64 chars) is required")
        raw = await request.read()
        digest = hashlib.sha256(raw).hexdigest()
        known = self.keys.get(key)
        if known is not None:
            if known[0] != digest:
                return _error(
                    400, "invalid_request", "Idempotence-Key was used with other parameters"
                )
            return web.json_response(self.payments[known[1]])
        try:
            payment = self._new_payment(await self._json(request))
        except _Invalid as exc:
            return _error(400, "invalid_request", exc.description, exc.parameter)
        body = json.loads(raw)
        self.payments[payment["id"]] = payment
        self.bodies[payment["id"]] = body
        self.keys[key] = (digest, payment["id"])
        if payment["status"] == "succeeded":
            self._issue_receipt(payment["id"])
        if "payment_method_id" in body:
            self.charges.append({"payment_id": payment["id"], "idempotence_key": key,
                                 "method_id": body["payment_method_id"],
                                 "amount": payment["amount"], "status": payment["status"],
                                 "receipt": body.get("receipt"),
                                 "metadata": payment["metadata"]})  # fmt: skip
        return web.json_response(payment)

    async def _get_method(self, request: web.Request) -> web.Response:
        method = self.methods.get(request.match_info["id"])
        if method is None:
            return _error(404, "not_found", "no such payment method")
        return web.json_response(method)

    async def _get_payment(self, request: web.Request) -> web.Response:
        payment = self.payments.get(request.match_info["id"])
        if payment is None:
            return _error(404, "not_found", "no such payment")
        return web.json_response(payment)

    async def _create_refund(self, request: web.Request) -> web.Response:
        """A full refund, once per Idempotence-Key (the same key with another body: 400)."""
        key = request.headers.get("Idempotence-Key")
        if not key or len(key) > 64:
            return _error(400, "invalid_request", "Idempotence-Key (1-64 chars) is required")
        raw = await request.read()
        digest = hashlib.sha256(raw).hexdigest()
        known = self.refund_keys.get(key)
        if known is not None:
            if known[0] != digest:
                return _error(
                    400, "invalid_request", "Idempotence-Key was used with other parameters"
                )
            return web.json_response(self.refunds[known[1]])
        try:
            body = await self._json(request)
            payment = self.payments.get(str(body.get("payment_id")))
            if payment is None:
                raise _Invalid("no such payment", "payment_id")
            amount = _amount(body.get("amount"), "amount")
            if amount != payment["amount"]:
                raise _Invalid("only full refunds in this fake", "amount")
            receipt = body.get("receipt")
            if receipt is not None and not (receipt.get("customer") or {}):
                raise _Invalid("receipt.customer needs an email or a phone", "receipt.customer")
            refund = self.refund(
                payment["id"], receipt=receipt, description=str(body.get("description") or "")
            )
        except _Invalid as exc:
            return _error(400, "invalid_request", exc.description, exc.parameter)
        except ValueError as exc:
            return _error(400, "invalid_request", str(exc), "payment_id")
        self.refund_keys[key] = (digest, refund["id"])
        return web.json_response(refund)

    async def _list_refunds(self, request: web.Request) -> web.Response:
        payment_id = request.query.get("payment_id")
        items = [r for r in self.refunds.values() if payment_id in (None, r["payment_id"])]
        return web.json_response({"type": "list", "items": items})

    async def _list_receipts(self, request: web.Request) -> web.Response:
        """GET /v3/receipts?payment_id=… or ?refund_id=… (exactly one), optionally &status=…"""
        wanted = {k: request.query[k] for k in ("payment_id", "refund_id") if k in request.query}
        if len(wanted) != 1:
            return _error(400, "invalid_request", "give payment_id or refund_id", "payment_id")
        (field, value), status = next(iter(wanted.items())), request.query.get("status")
        items = [
            r for r in self.receipts.values()
            if r.get(field) == value and status in (None, r["status"])
        ]  # fmt: skip
        return web.json_response({"type": "list", "items": items})

    async def _get_refund(self, request: web.Request) -> web.Response:
        refund = self.refunds.get(request.match_info["id"])
        if refund is None:
            return _error(404, "not_found", "no such refund")
        return web.json_response(refund)

    # ------------------------------------------------------------------ checkout page
    async def _checkout(self, request: web.Request) -> web.Response:
        """The page the payment's confirmation_url opens in a browser: "Pay" pays with `card`."""
        payment = self.payments.get(request.match_info["id"])
        if payment is None:
            raise web.HTTPNotFound()
        amount = f"{payment['amount']['value']} {payment['amount']['currency']}"
        back = (payment.get("confirmation") or {}).get("return_url", "")
        if payment["status"] == "pending":
            card = f"{self.card['card_type']} *{self.card['last4']}"
            action = (
                f"<form method=post><p>Card: {html.escape(card)}</p>"
                "<button type=submit>Pay</button></form>"
            )
        else:
            action = f'<p><a href="{html.escape(back)}">Back to the shop</a></p>' if back else ""
        page = (
            "<!doctype html><html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width, initial-scale=1'>"
            "<title>YooKassa fake: checkout</title></head>"
            "<body style='font:16px system-ui,sans-serif;max-width:32em;margin:2em auto'>"
            "<h1>YooKassa fake</h1>"
            f"<p>{html.escape(payment['description'])}</p>"
            f"<p><b>{html.escape(amount)}</b> — {html.escape(payment['status'])}</p>"
            f"{action}</body></html>"
        )
        return web.Response(text=page, content_type="text/html", charset="utf-8")

    async def _checkout_pay(self, request: web.Request) -> web.Response:
        """Pay, notify the shop's webhook (as YooKassa would; a shop that does not answer does
        not undo the payment), and send the payer back to the shop's return_url."""
        payment_id = request.match_info["id"]
        if payment_id not in self.payments:
            raise web.HTTPNotFound()
        self.succeed(payment_id)
        if self.webhook_url:
            try:
                await self.notify(
                    self.webhook_url, "payment.succeeded", payment_id, source=self.notify_source
                )
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.warning(
                    "notification of %s to %s failed: %s", payment_id, self.webhook_url, exc
                )
        raise web.HTTPFound(self.payments[payment_id]["confirmation"]["return_url"])

    # ------------------------------------------------------------------ test controls
    async def _c_action(self, request: web.Request) -> web.Response:
        payment_id, action = request.match_info["id"], request.match_info["action"]
        try:
            if action == "succeed":
                result = self.succeed(payment_id)
            elif action == "cancel":
                result = self.cancel(payment_id)
            elif action == "refund":
                result = self.refund(payment_id)
            else:
                raise web.HTTPNotFound()
        except (KeyError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(result)

    async def _c_list(self, request: web.Request) -> web.Response:
        return web.json_response(list(self.payments.values()))

    async def _c_notify(self, request: web.Request) -> web.Response:
        body = await request.json()
        status = await self.notify(
            body["url"], body["event"], body["object_id"], source=body.get("source", "127.0.0.1")
        )
        return web.json_response({"status": status})

    async def _c_faults(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.down = bool(body.get("down", False))
        self.delay = float(body.get("delay", 0.0))
        self.fail_next = max(int(body.get("fail_next", 0)), 0)
        return web.json_response(
            {"down": self.down, "delay": self.delay, "fail_next": self.fail_next}
        )
