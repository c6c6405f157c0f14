"""Microsoft Graph answers for the Teams tests: the recorded chat listing from
../shared/fixtures/msgraph plus invented chats, members and channel messages written in the shapes
Graph documents (chatMessage, aadUserConversationMember, change notifications). People are the
example organisation's (examples/registers.toml)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import respx

from tests.shared import require_shared

TENANT = "contoso-tenant-0001"
CLIENT_ID = "app-0001"
SECRET = "teams-client-secret-9f8e7d"
CLIENT_STATE = "teams-client-state-5a4b3c"
TOKEN = "graph-access-token-abc123"

TUTOR_AAD = "aad-0006"  # Daniel Mensah, staff S006 (platform_ids "teams:aad-0006")
LEARNER_AAD = "aad-l003"  # Oliver Smith-Hughes, learner L003, known to the registers by email
LEARNER_EMAIL = "oliver.smithhughes@students.brookfield.example.org"
CHAT = "19:tutorial-chat-0001@unq.gbl.spaces"
TEAM, CHANNEL = "team-0001", "19:general-0001@thread.tacv2"


def recorded_chat_page() -> dict[str, Any]:
    """GET /chats/{id}/messages as recorded in Graph's documentation (3 messages)."""
    path = require_shared("fixtures", "msgraph", "chat-list-messages.example1.response.json")
    page: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return page


def message(mid: str, created: str, text: str, *, author: str = TUTOR_AAD,
            name: str = "Daniel Mensah", chat: str | None = CHAT, reply_to: str | None = None,
            deleted: str | None = None, edited: str | None = None, html: bool = False,
            mentions: list[dict[str, Any]] | None = None,
            channel: tuple[str, str] | None = None) -> dict[str, Any]:
    return {
        "id": mid, "replyToId": reply_to, "etag": mid, "messageType": "message",
        "createdDateTime": created, "lastModifiedDateTime": edited or created,
        "lastEditedDateTime": edited, "deletedDateTime": deleted, "subject": None,
        "summary": None, "chatId": chat, "importance": "normal", "locale": "en-us",
        "webUrl": None,
        "channelIdentity": ({"teamId": channel[0], "channelId": channel[1]} if channel else None),
        "policyViolation": None, "eventDetail": None,
        "from": {"application": None, "device": None,
                 "user": {"id": author, "displayName": name, "userIdentityType": "aadUser"}},
        "body": {"contentType": "html" if html else "text", "content": text},
        "attachments": [], "mentions": mentions or [], "reactions": [], "messageHistory": [],
    }


def member(user_id: str, name: str, email: str) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.aadUserConversationMember",
        "id": f"member-{user_id}", "roles": ["owner"], "displayName": name,
        "visibleHistoryStartDateTime": "0001-01-01T00:00:00Z", "userId": user_id,
        "email": email, "tenantId": TENANT,
    }


def members_page(*people: dict[str, Any]) -> dict[str, Any]:
    return {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#chats('x')/members",
            "@odata.count": len(people), "value": list(people)}


TUTORIAL_MEMBERS = members_page(
    member(TUTOR_AAD, "Daniel Mensah", "d.mensah@brookfield.example.org"),
    member(LEARNER_AAD, "Oliver Smith-Hughes", LEARNER_EMAIL),
)


def delta_page(messages: list[dict[str, Any]], *, next_link: str | None = None,
               delta_link: str | None = None) -> dict[str, Any]:
    page: dict[str, Any] = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata"
                                              "#Collection(chatMessage)", "value": messages}
    if next_link:
        page["@odata.nextLink"] = next_link
    if delta_link:
        page["@odata.deltaLink"] = delta_link
    return page


def install_token(router: respx.MockRouter, login: str) -> respx.Route:
    return router.post(f"{login}/{TENANT}/oauth2/v2.0/token").mock(
        return_value=httpx.Response(200, json={"token_type": "Bearer", "expires_in": 3599,
                                               "ext_expires_in": 3599, "access_token": TOKEN}))


def teams_settings(base_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "teams", "tenant_id": TENANT, "client_id": CLIENT_ID,
        "client_secret": "${TEAMS_CLIENT_SECRET}", "client_state": "${TEAMS_CLIENT_STATE}",
        "users": [TUTOR_AAD], "base_url": base_url, "login_base_url": base_url, **extra,
    }


TEAMS_ENV = {"TEAMS_CLIENT_SECRET": SECRET, "TEAMS_CLIENT_STATE": CLIENT_STATE}


# -- change-notification subscriptions -----------------------------------------------------------
# ../shared/fixtures/msgraph holds no subscription answers, so these follow the shapes in Graph's
# documentation: the `subscription` resource and "Create subscription" example response
# (api-reference/v1.0/api/subscription-post-subscriptions.md), the lifecycle notification
# structure (concepts/change-notifications-lifecycle-events.md) and Graph's error body
# {"error": {"code", "message", "innerError"}} with the messages Graph sends for a failed
# notification-URL validation and a missing permission.

PUBLIC_URL = "https://governance.brookfield.example.org"
NOTIFICATION_URL = f"{PUBLIC_URL}/webhooks/teams"
APP_ID = "24d3b144-0000-4080-943f-7067b395b913"


def subscription_created(sub_id: str, resource: str, expires: str,
                         client_state: str = CLIENT_STATE) -> dict[str, Any]:
    """201 Created from POST /subscriptions (and 200 from PATCH /subscriptions/{id})."""
    return {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity",
        "id": sub_id, "resource": resource, "applicationId": APP_ID,
        "changeType": "created,updated,deleted", "clientState": client_state,
        "notificationUrl": NOTIFICATION_URL, "notificationQueryOptions": None,
        "lifecycleNotificationUrl": NOTIFICATION_URL, "expirationDateTime": expires,
        "creatorId": "8ee44408-0679-472c-bc2a-692812af3437", "includeResourceData": None,
        "latestSupportedTlsVersion": "v1_2", "encryptionCertificate": None,
        "encryptionCertificateId": None, "notificationUrlAppId": None,
    }


def graph_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "innerError": {
        "date": "2026-11-21T09:00:00", "request-id": "b2e40ef6-0000-4b84-a147-f9ebc0683d30",
        "client-request-id": "b2e40ef6-0000-4b84-a147-f9ebc0683d30"}}}


VALIDATION_FAILED = graph_error(
    "ValidationError", "Subscription validation request failed. Notification endpoint must "
    "respond with 200 OK to validation request.")
FORBIDDEN = graph_error(
    "ExtensionError", "Operation: Create; Exception: [Status Code: Forbidden; Reason: The "
    "application does not have the required permissions]")
NOT_FOUND = graph_error("ResourceNotFound", "The object was not found.")


def lifecycle_notification(sub_id: str, event: str, client_state: str = CLIENT_STATE) -> bytes:
    """A lifecycle notification as Graph posts it to lifecycleNotificationUrl."""
    return json.dumps({"value": [{
        "subscriptionId": sub_id, "subscriptionExpirationDateTime": "2026-11-23T09:00:00Z",
        "tenantId": TENANT, "clientState": client_state, "lifecycleEvent": event,
    }]}).encode()
