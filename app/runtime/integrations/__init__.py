"""Integrations with the outside world: email over SMTP, SMS through a gateway, webhook
triggers, and the pre-flight checks Publish shows. No Qt."""

from .email import check_smtp, message_id, send_email
from .errors import DeliveryError, IntegrationSettingError
from .masking import MASK, SecretMaskingFilter, mask_secrets, mask_text
from .preflight import NOT_CONFIGURED_PROBLEM, TEST_FAILED_PROBLEM, PreflightWarning, preflight, preflight_checks
from .settings import (
    last_test_result,
    load_sms,
    load_smtp,
    record_test_result,
    set_integration,
)
from .sms import check_sms, send_sms
from .webhook import WebhookServer, serve_webhooks

__all__ = [
    "MASK",
    "NOT_CONFIGURED_PROBLEM",
    "TEST_FAILED_PROBLEM",
    "DeliveryError",
    "IntegrationSettingError",
    "PreflightWarning",
    "SecretMaskingFilter",
    "WebhookServer",
    "check_sms",
    "check_smtp",
    "last_test_result",
    "load_sms",
    "load_smtp",
    "mask_secrets",
    "mask_text",
    "message_id",
    "preflight",
    "preflight_checks",
    "record_test_result",
    "send_email",
    "send_sms",
    "serve_webhooks",
    "set_integration",
]
